from archway.identity.store import identity_metadata
from archway.kernel.migrate import run_env

run_env(identity_metadata)
