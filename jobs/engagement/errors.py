"""The engagement job's errors: faults of its set-up, reported to a person in one line.

    ChatstreamError
    └── EngagementError
        ├── SchemaMappingError    a contract holds a type Flink's Avro format cannot map
        ├── ConnectorJarsError    the Flink connector jars are missing and cannot be fetched
        ├── JobSubmitError        Flink refused the job (planning, a cluster that does not answer)
        └── ResumeError           a resuming job cannot read what it committed (its restore floor)
"""

from __future__ import annotations

from chatstream.errors import ChatstreamError


class EngagementError(ChatstreamError):
    """Base of the engagement job's errors."""


class SchemaMappingError(EngagementError):
    """A contract cannot be expressed as Flink SQL columns (a union other than ["null", T])."""


class ConnectorJarsError(EngagementError):
    """The Kafka connector or avro-confluent format jars are not there and could not be fetched."""


class JobSubmitError(EngagementError):
    """Flink refused the job, or the cluster it was sent to did not take it."""


class ResumeError(EngagementError):
    """A job resuming from a checkpoint could not read its committed outputs back from Kafka."""
