"""Model provider clients: one streaming call each (see base)."""
