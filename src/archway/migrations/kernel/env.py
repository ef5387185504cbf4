from archway.kernel.migrate import run_env
from archway.kernel.tables import kernel_metadata

run_env(kernel_metadata)
