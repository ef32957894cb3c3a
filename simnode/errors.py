"""The one error hierarchy of tasksim, with OpenSearch's `type` strings and HTTP statuses.

Every failure a user can see — a REST error envelope, a `node_failures` entry, a `task_failures`
reason, an ML task error — is an `OpenSearchError`. `xcontent()` renders it the way
`OpenSearchException.toXContent` / `generateThrowableXContent` do: `type`, `reason`, metadata in
order, `caused_by` (recursive). `root_causes()` follows `guessRootCauses`. Errors cross the gRPC wire
as `ErrorCause` messages and come back as the same classes (see `from_parts`). Pure; no I/O.
"""

from __future__ import annotations

import builtins
from typing import Any, ClassVar

# Java exceptions that are not OpenSearchExceptions: `guessRootCauses` stops at them (the outer
# exception becomes the single root cause) and they never count as a deeper root cause.
_NON_OPENSEARCH_TYPES = frozenset(
    {
        "exception",
        "illegal_argument_exception",
        "illegal_state_exception",
        "number_format_exception",
        "action_request_validation_exception",
        "null_pointer_exception",
        "stream_constraints_exception",
    }
)

# RestStatus names, as `TaskOperationFailure` renders `status`.
REST_STATUS_NAMES = {
    200: "OK",
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "REQUEST_ENTITY_TOO_LARGE",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


class OpenSearchError(Exception):
    """An OpenSearch exception: `type` (snake_case), `reason`, `status`, metadata, `caused_by`."""

    type: str = "exception"
    status: int = 500
    _registry: ClassVar[dict[str, builtins.type[OpenSearchError]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        OpenSearchError._registry.setdefault(cls.type, cls)

    def __init__(
        self,
        reason: str,
        *,
        cause: OpenSearchError | None = None,
        metadata: list[tuple[str, Any]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause
        # Values are strings, or JSON values (lists, objects) as `ScriptException` renders them.
        self.metadata: list[tuple[str, Any]] = list(metadata or [])

    @classmethod
    def from_parts(
        cls,
        type_: str,
        reason: str,
        *,
        status: int = 500,
        metadata: list[tuple[str, Any]] | None = None,
        cause: OpenSearchError | None = None,
    ) -> OpenSearchError:
        """Rebuild an error received over the wire, as the class its `type` names when we know it."""
        known = cls._registry.get(type_)
        if known is not None and known.__init__ is OpenSearchError.__init__:
            err: OpenSearchError = known(reason, cause=cause, metadata=metadata)
        else:
            err = OpenSearchError(reason, cause=cause, metadata=metadata)
        err.type = type_
        err.status = status
        return err

    @property
    def is_opensearch_exception(self) -> bool:
        return self.type not in _NON_OPENSEARCH_TYPES

    def root_causes(self) -> list[OpenSearchError]:
        """`OpenSearchException.guessRootCauses`: the deepest OpenSearch exception of the chain."""
        if not self.is_opensearch_exception:
            return [self]
        current: OpenSearchError = self
        while current.cause is not None and current.cause.is_opensearch_exception:
            current = current.cause
        return [current]

    def xcontent(self, *, with_cause: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "reason": self.reason}
        for key, value in self.metadata:
            body[key] = value
        if with_cause and self.cause is not None:
            body["caused_by"] = self.cause.xcontent()
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.type!r}, {self.reason!r})"


class IllegalArgumentError(OpenSearchError):
    type = "illegal_argument_exception"
    status = 400


class IllegalStateError(OpenSearchError):
    type = "illegal_state_exception"
    status = 500


class NumberFormatError(OpenSearchError):
    type = "number_format_exception"
    status = 400


class ActionRequestValidationError(OpenSearchError):
    """`ActionRequestValidationException`: `Validation Failed: 1: <error>;2: <error>;`."""

    type = "action_request_validation_exception"
    status = 400

    @classmethod
    def of(cls, *errors: str) -> ActionRequestValidationError:
        listed = "".join(f"{i}: {e};" for i, e in enumerate(errors, start=1))
        return cls(f"Validation Failed: {listed}")


class StreamConstraintsError(OpenSearchError):
    """Jackson's `StreamConstraintsException` (a document too deep, too long): the cause of the
    parse error a request body that breaks Jackson's read constraints gets."""

    type = "stream_constraints_exception"
    status = 400


class ParseError(OpenSearchError):
    """`OpenSearchParseException`."""

    type = "parse_exception"
    status = 400


class ResourceNotFoundError(OpenSearchError):
    type = "resource_not_found_exception"
    status = 404


class IndexNotFoundError(OpenSearchError):
    type = "index_not_found_exception"
    status = 404

    @classmethod
    def of(cls, index: str) -> IndexNotFoundError:
        return cls(
            f"no such index [{index}]",
            metadata=[
                ("resource.type", "index_or_alias"),
                ("resource.id", index),
                ("index_uuid", "_na_"),
                ("index", index),
            ],
        )


class StatusError(OpenSearchError):
    """`OpenSearchStatusException`: an exception that carries its own HTTP status."""

    type = "status_exception"

    def __init__(self, reason: str, status: int, **kwargs: Any) -> None:
        super().__init__(reason, **kwargs)
        self.status = status


class ResourceAlreadyExistsError(OpenSearchError):
    type = "resource_already_exists_exception"
    status = 400


class InvalidIndexNameError(OpenSearchError):
    type = "invalid_index_name_exception"
    status = 400


class SearchPhaseExecutionError(OpenSearchError):
    """`SearchPhaseExecutionException` ("all shards failed"), with `phase` and `grouped`."""

    type = "search_phase_execution_exception"
    status = 500


class TaskCancelledError(OpenSearchError):
    type = "task_cancelled_exception"
    status = 500


class OpenSearchTimeoutError(OpenSearchError):
    """`OpenSearchTimeoutException` (504 in current OpenSearch)."""

    type = "timeout_exception"
    status = 504


class FailedNodeError(OpenSearchError):
    """`FailedNodeException("Failed node [<id>]")` with `node_id` metadata."""

    type = "failed_node_exception"
    status = 500

    @classmethod
    def of(cls, node_id: str, cause: OpenSearchError) -> FailedNodeError:
        return cls(f"Failed node [{node_id}]", cause=cause, metadata=[("node_id", node_id)])


class NoSuchNodeError(OpenSearchError):
    type = "no_such_node_exception"
    status = 500

    @classmethod
    def of(cls, node_id: str) -> NoSuchNodeError:
        return cls(f"No such node [{node_id}]", metadata=[("node_id", node_id)])


class ReceiveTimeoutTransportError(OpenSearchError):
    type = "receive_timeout_transport_exception"
    status = 500


class NodeDisconnectedError(OpenSearchError):
    type = "node_disconnected_exception"
    status = 500


class ConnectTransportError(OpenSearchError):
    type = "connect_transport_exception"
    status = 500


class TransportError(OpenSearchError):
    """A transport failure with no more specific OpenSearch type."""

    type = "transport_exception"
    status = 500


class RejectedExecutionError(OpenSearchError):
    """`OpenSearchRejectedExecutionException`: a queue or a limit is full (429)."""

    type = "rejected_execution_exception"
    status = 429


class SimulatedBug(RuntimeError):
    """What the `bug` test hook of a simulated task raises: a Python error, not an OpenSearch one,
    standing for a bug in tasksim (it must be contained like any real one)."""


def first_leaf(exc: BaseException) -> BaseException:
    """The first exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def internal_error(exc: BaseException) -> OpenSearchError:
    """A bug as a user sees it: the one task or request it belongs to fails with a 500 `exception`
    (the envelope OpenSearch gives an exception that is not its own), whose reason names the
    Python error. An `OpenSearchError` stays itself."""
    leaf = first_leaf(exc)
    if isinstance(leaf, OpenSearchError):
        return leaf
    return OpenSearchError(f"{type(leaf).__name__}: {leaf}")
