"""Model provider clients: one streaming call each (see base).

``OpenAIProvider`` (openai_compat) speaks to any OpenAI-compatible server; ``SimulatedProvider``
(simulated) answers locally and deterministically, the local default.
"""
