"""GraphQL at ``/graphql``: one schema over every context (see :mod:`.schema`), served by
:mod:`.endpoint` under the HTTP service defaults like any other route."""
