from archway.kernel.migrate import run_env
from archway.orders.store import orders_metadata

run_env(orders_metadata)
