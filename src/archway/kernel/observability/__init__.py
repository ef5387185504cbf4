"""Observability: ECS JSON logs with request and trace context, and Prometheus metrics.

Both are plain building blocks; composition roots wire them into middleware and endpoints.
"""
