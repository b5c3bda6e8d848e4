"""What the gateway answers when it refuses a request.

    GatewayError                  status, a machine-readable code, a message, optional details
    ├── MalformedRequestError     400 body is not JSON / not an event or a batch
    ├── InvalidParameterError     400 an analytics query parameter is malformed or out of range
    ├── UnauthorizedError         401 missing, malformed, forged or expired token
    ├── ForbiddenError            403 tenant or user in the body differs from the token's
    ├── PayloadTooLargeError      413 body or batch over the configured limits
    ├── InvalidEventsError        422 unknown event type or schema violation, per event and field
    ├── RateLimitedError          429 the tenant's token bucket is empty (Retry-After)
    ├── KafkaUnavailableError     503 Kafka did not take the request: none of its events is stored
    ├── KafkaOutcomeUnknownError  504 Kafka did not confirm the commit in time: retry, same event ids
    ├── AnalyticsUnavailableError 503 ClickHouse did not answer an analytics query (down, or over the timeout)
    ├── ModelNotFoundError        404 the chat API's ``model`` is no alias of the routing config
    ├── AnswerFailedError         the dispatch job's FAILED answer: its status says why (429, 502, 504)
    ├── AnswerTimeoutError        504 no answer started (or it fell silent) within the configured time
    └── ClientGoneError           499 the client left before its answer (nobody reads this reply)

Every error body is ``{"error": {"code", "message", "details"?}}``; on the OpenAI-compatible
routes it is OpenAI's ``{"error": {"message", "type", "param", "code"}}`` (``openai_body``).
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None,
                 retry_after_s: float | None = None, param: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.details = details
        self.retry_after_s = retry_after_s
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}

    def openai_body(self) -> dict[str, Any]:
        """The error as OpenAI's API writes it (what OpenAI SDKs and LibreChat parse)."""
        return {"error": {"message": self.message, "type": openai_type(self.status), "param": self.param,
                          "code": self.code}}  # fmt: skip

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": str(max(1, round(self.retry_after_s + 0.49)))}


def openai_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "timeout" if status == 504 else "api_error"
    return "invalid_request_error"


class MalformedRequestError(GatewayError):
    status, code = 400, "malformed_request"


class InvalidParameterError(GatewayError):
    status, code = 400, "invalid_parameter"


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


class AnalyticsUnavailableError(GatewayError):
    status, code = 503, "clickhouse_unavailable"


class ModelNotFoundError(GatewayError):
    status, code = 404, "model_not_found"


class AnswerTimeoutError(GatewayError):
    status, code = 504, "timeout"


class AnswerFailedError(GatewayError):
    """The dispatch job answered FAILED; ``error_code`` (ai.responses.v1) decides the status."""

    STATUS = {"model_not_found": 404, "tenant_rate_limited": 429, "budget_exceeded": 429, "expired": 504,
              "bad_request": 400, "cancelled": 499}  # fmt: skip

    def __init__(self, error_code: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.code = error_code
        self.status = self.STATUS.get(error_code, 502)


class ClientGoneError(GatewayError):
    status, code = 499, "client_closed_request"
