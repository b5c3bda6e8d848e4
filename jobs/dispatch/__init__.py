"""The dispatch job: one chat completion request in, a provider's answer out, as events.

Pure logic, one concept a module, every clock reading and random draw passed in:

    config        the routing file (pipelines/models.toml) as frozen, validated models
    routing       which deployments to try for a request, in which order, and why
    latency       moving window of time-to-first-token per deployment
    breaker       one circuit breaker per deployment
    retry         backoff with jitter, Retry-After, and what an error leads to
    limits        per-tenant and per-deployment RPM/TPM windows, daily USD budget
    continuation  mid-stream fallback: trimming what a continuation repeats
    batching      deltas into chunk events (per N tokens or M ms)
    cache         optional exact-match answer cache
    usage         token estimates and cost

The engine and what it speaks:

    events        DispatchRequest in; Dispatched, ChunkBatch, Completed, Failed out
    engine        Dispatcher.run: one request through all of the above against Provider
                  clients (no Kafka); answer (its running state) and results (its final event)
    providers     the Provider clients of a config, built once at start

The wiring (``app``, Faust) connects the engine to topics and tables.

Errors (one tree; a request's own failure is a ``Failed`` event, never an exception)::

    ChatstreamError
    └── DispatchError
        ├── RoutingConfigError     the routing file cannot be read or is invalid (one line,
        │                          naming the file and the field)
        └── ProviderSetupError     a deployment has no provider client
"""
