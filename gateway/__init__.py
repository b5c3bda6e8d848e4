"""The ASGI gateway: ingest, the OpenAI-compatible chat API, auth, rate limits, read APIs."""
