import archway.catalog.store  # noqa: F401  (registers the outbox and inbox tables)
from archway.catalog.store import catalog_metadata
from archway.kernel.migrate import run_env

run_env(catalog_metadata)
