"""Local bootstrap of the real services (no Docker), DDL migrations and deployment manifests."""
