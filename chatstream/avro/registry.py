"""Register the contracts with a Confluent-API schema registry and check them against it.

Works with any registry speaking Confluent's REST API (Apicurio's ``/apis/ccompat/v7``,
Confluent Schema Registry, Redpanda, Karapace). Each subject is set to BACKWARD_TRANSITIVE, so
the registry refuses an incompatible change even where no global rule says so.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.common.schema_registry_client import (
    ConfigCompatibilityLevel,
    ServerConfig,
)
from confluent_kafka.schema_registry.error import SchemaRegistryError

from chatstream.avro.catalog import Contract
from chatstream.avro.errors import RegistryError
from chatstream.avro.serde import WireFormatError

# confluent-kafka talks HTTP through httpx2 where it is installed, else httpx.
try:
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, httpx2.HTTPError, OSError)
except ImportError:  # pragma: no cover - depends on confluent-kafka's optional choice
    _TRANSPORT_ERRORS = (httpx.HTTPError, OSError)

SUBJECT_NOT_FOUND = 40401
SCHEMA_NOT_FOUND = 40403
COMPATIBILITY = ConfigCompatibilityLevel.BACKWARD_TRANSITIVE


@dataclass(frozen=True)
class Registration:
    subject: str
    schema_id: int
    version: int
    new: bool


CheckState = Literal["new", "registered", "compatible", "incompatible"]


@dataclass(frozen=True)
class CheckResult:
    """How a local contract relates to its subject's registered history."""

    subject: str
    state: CheckState
    versions: list[int] = field(default_factory=list)
    incompatible_with: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state != "incompatible"


class ContractRegistry:
    """The contracts' view of one registry; every third-party error becomes a RegistryError."""

    def __init__(self, url: str, client: SchemaRegistryClient | None = None) -> None:
        self.url = url
        self.client = client or SchemaRegistryClient({"url": url})

    def __enter__(self) -> ContractRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session; the registry object is unusable afterwards."""
        self.client.close()

    @contextmanager
    def _translated(self, subject: str) -> Iterator[None]:
        try:
            yield
        except SchemaRegistryError as exc:
            raise RegistryError(f"{subject}: the registry refused it: {exc.error_message}") from exc
        except _TRANSPORT_ERRORS as exc:
            raise RegistryError(f"schema registry at {self.url} not reachable: {exc}") from exc

    def _lookup(self, contract: Contract) -> int | None:
        """The version holding exactly this schema, or None."""
        try:
            found = self.client.lookup_schema(contract.subject, Schema(contract.canonical, "AVRO"))
        except SchemaRegistryError as exc:
            if exc.error_code in (SUBJECT_NOT_FOUND, SCHEMA_NOT_FOUND) or exc.http_status_code == 404:
                return None
            raise
        return found.version

    def register(self, contract: Contract) -> Registration:
        """Register ``contract`` under its subject (idempotent: a known schema keeps its id)."""
        with self._translated(contract.subject):
            known = self._lookup(contract)
            if known is None:
                config = ServerConfig(compatibility=COMPATIBILITY)
                self.client.set_config(contract.subject, config)
            schema = Schema(contract.canonical, "AVRO")
            schema_id = self.client.register_schema(contract.subject, schema)
            version = known if known is not None else self._lookup(contract)
        return Registration(contract.subject, schema_id, version or 0, new=known is None)

    def check(self, contract: Contract) -> CheckResult:
        """Test ``contract`` against every registered version (BACKWARD_TRANSITIVE)."""
        with self._translated(contract.subject):
            try:
                versions = self.client.get_versions(contract.subject)
            except SchemaRegistryError as exc:
                if exc.error_code == SUBJECT_NOT_FOUND or exc.http_status_code == 404:
                    return CheckResult(contract.subject, "new")
                raise
            if self._lookup(contract) is not None:
                return CheckResult(contract.subject, "registered", versions)
            schema = Schema(contract.canonical, "AVRO")
            bad = [
                v for v in versions if not self.client.test_compatibility(contract.subject, schema, v)
            ]
        state: CheckState = "incompatible" if bad else "compatible"
        return CheckResult(contract.subject, state, versions, bad)


def registry_fetcher(registry: SchemaRegistryClient) -> Callable[[int], dict[str, Any]]:
    """Writer schemas by id, for ``ConfluentDecoder``: an id the registry does not know is a
    ``WireFormatError`` (the record is bad); an unreachable registry raises as it is."""

    def fetch(schema_id: int) -> dict[str, Any]:
        try:
            schema = registry.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                raise WireFormatError(f"schema id {schema_id} is not in the registry") from exc
            raise
        parsed: dict[str, Any] = json.loads(schema.schema_str or "null")
        return parsed

    return fetch
