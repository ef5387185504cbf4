"""JSON integers as JSON Schema reads them, for strict request bodies.

Bodies are strict (``"5"`` is not a number), but JSON has one number type and the documents
publish ``"type": "integer"``, which JSON Schema takes to be any number with a zero fractional
part: ``2.0`` is a valid quantity by the schema, so it is taken as 2. ``2.5`` stays refused.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator


def _integral_float_as_int(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_integral_float_as_int)]
