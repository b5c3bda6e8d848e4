"""Wiring: topics and their settings, which job reads and writes what, which sink drains what."""
