"""HTTP policies shared by every HTTP process: problems, versioning, limits, idempotency, docs."""
