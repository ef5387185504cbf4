"""What keeps an abusive query from costing the server: depth, aliases, tokens and cost.

Strawberry has the first three (``QueryDepthLimiter``, ``MaxAliasesLimiter``,
``MaxTokensLimiter``); the cost rule is Archway's, small on purpose: every field costs 1, and
the fields below a list cost as many times as the list may hold rows (a field's ``first`` or
``limit`` argument: its literal value, the maximum for a variable since validation is cached
per document and never sees variables, its default when absent). So ``products(first: 100) {
edges { node { ... } } }`` costs about 100 × the fields of a node, and nesting lists multiplies.
"""

from __future__ import annotations

import re
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
    get_named_type,
)

from archway.kernel.pagination import DEFAULT_LIMIT, MAX_LIMIT

SIZE_ARGUMENTS = ("first", "limit")
LIMITED = "QUERY_TOO_COMPLEX"
# How Strawberry's limiters and graphql-core's token limit word their refusals (they carry no
# code of their own); tests/graphql/test_limits.py holds each to its wording.
_LIMIT_MESSAGES = re.compile(
    r"^('.*' exceeds maximum operation depth of \d+"
    r"|\d+ aliases found\. Allowed: \d+"
    r"|Syntax Error: Document contains more than \d+ tokens\..*)$", re.DOTALL)


def is_limit(message: str) -> bool:
    """Whether a refusal without a code is one of the limits' (depth, aliases, tokens)."""
    return _LIMIT_MESSAGES.match(message) is not None


def cost_limit(max_cost: int) -> type[ValidationRule]:
    """A validation rule refusing an operation whose cost (see the module) passes
    ``max_cost``, with ``extensions.code`` ``QUERY_TOO_COMPLEX``."""

    class CostLimit(ValidationRule):
        def enter_operation_definition(
            self, node: OperationDefinitionNode, *_args: Any
        ) -> None:
            context: ValidationContext = self.context
            schema = context.schema
            root = schema.get_root_type(node.operation)
            if root is None:
                return
            fragments = {
                definition.name.value: definition for definition in context.document.definitions
                if isinstance(definition, FragmentDefinitionNode)}
            cost = _cost(node.selection_set, root, fragments, frozenset(), max_cost)
            if cost > max_cost:
                name = node.name.value if node.name else "the operation"
                context.report_error(GraphQLError(
                    f"{name} would cost {cost}, more than the {max_cost} allowed: ask for "
                    "fewer rows (first, limit) or fewer nested lists.", node,
                    extensions={"code": LIMITED, "cost": cost, "maxCost": max_cost}))

    return CostLimit


def _cost(
    selections: SelectionSetNode | None,
    parent: Any,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
    ceiling: int,
) -> int:
    if selections is None or not isinstance(parent, GraphQLObjectType):
        return 0
    total = 0
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            definition = parent.fields.get(selection.name.value)
            if definition is None:  # __typename, or unknown (another rule reports it)
                total += 1
                continue
            size = _size(selection, definition)
            child = get_named_type(definition.type)
            total += 1 + size * _cost(selection.selection_set, child, fragments, seen, ceiling)
        elif isinstance(selection, InlineFragmentNode):
            # Every type of this schema is an object type: a fragment's condition is its parent.
            total += _cost(selection.selection_set, parent, fragments, seen, ceiling)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:  # a cycle is another rule's error
                total += _cost(fragment.selection_set, parent, fragments, seen | {name}, ceiling)
        if total > ceiling:  # enough to refuse: a huge document stops costing here
            return total
    return total


def _size(node: FieldNode, definition: GraphQLField) -> int:
    """How many rows a list field may return: its size argument, else 1."""
    for name in SIZE_ARGUMENTS:
        if name not in definition.args:
            continue
        given = next((arg.value for arg in node.arguments or () if arg.name.value == name), None)
        if isinstance(given, IntValueNode):
            return max(1, min(int(given.value), MAX_LIMIT))
        if isinstance(given, VariableNode):
            return MAX_LIMIT
        default = definition.args[name].default_value
        return default if isinstance(default, int) and default > 0 else DEFAULT_LIMIT
    return 1
