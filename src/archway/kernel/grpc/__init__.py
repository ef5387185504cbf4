"""gRPC's share of the kernel: the one error mapping (status.py) and the server (server.py)."""
