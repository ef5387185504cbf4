"""Generated from proto/ by `make protos` (archway.tools.protos): do not edit."""
