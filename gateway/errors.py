"""What the gateway answers when it refuses a request.

    GatewayError                  status, a machine-readable code, a message, optional details
    ├── MalformedRequestError     400 body is not JSON / not an event or a batch
    ├── UnauthorizedError         401 missing, malformed, forged or expired token
    ├── ForbiddenError            403 tenant or user in the body differs from the token's
    ├── PayloadTooLargeError      413 body or batch over the configured limits
    ├── InvalidEventsError        422 unknown event type or schema violation, per event and field
    ├── RateLimitedError          429 the tenant's token bucket is empty (Retry-After)
    ├── KafkaUnavailableError     503 Kafka did not take the request: none of its events is stored
    └── KafkaOutcomeUnknownError  504 Kafka did not confirm the commit in time: retry, same event ids

Every error body is ``{"error": {"code", "message", "details"?}}``.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None,
                 retry_after_s: float | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after_s = retry_after_s

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after_s + 0.49)))}


class MalformedRequestError(GatewayError):
    status, code = 400, "malformed_request"


class UnauthorizedError(GatewayError):
    status, code = 401, "unauthorized"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="chatstream"'}


class ForbiddenError(GatewayError):
    status, code = 403, "forbidden"


class PayloadTooLargeError(GatewayError):
    status, code = 413, "payload_too_large"


class InvalidEventsError(GatewayError):
    status, code = 422, "invalid_events"


class RateLimitedError(GatewayError):
    status, code = 429, "rate_limited"


class KafkaUnavailableError(GatewayError):
    status, code = 503, "kafka_unavailable"


class KafkaOutcomeUnknownError(GatewayError):
    status, code = 504, "kafka_outcome_unknown"
