"""Authentication and authorization shared by every process: principals, scopes, JWT checks."""
