"""Shared test configuration: tests/unit needs no service, tests/integration the real ones."""
