"""`chatstream demo`: synthetic chat traffic through the real gateway, and its summary."""
