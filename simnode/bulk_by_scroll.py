"""OpenSearch's `BulkByScrollTask`: the status of a reindex / update-by-query / delete-by-query, its
response, and the throttle arithmetic — everything that decides what those tasks report.

A worker (`WorkerState`, OpenSearch's `WorkerBulkByScrollTaskState`) counts batches and documents and
sleeps between batches when `requests_per_second` is finite: after a batch of `n` documents the next
one waits `n / requests_per_second` seconds (capped at one hour), and that wait is added to
`throttled_millis` when it ends; `throttled_until_millis` is what is left of the current wait.
Rethrottling to a *faster* rate rescales the current wait (`remaining * old / new`); to a slower one
it takes effect at the next batch. Cancelling rethrottles to unlimited, so a sleeping worker wakes up
and finishes with `canceled`. A leader (`LeaderState`) of `slices` workers reports the sum of its
finished slices, with `slices: [status|null, ...]`.

A worker on real documents reads and writes them through a `HitSource` (the coordinator's
document store; simnode never sees a document): `open` a `Scroll` on the operation's snapshot,
then page, `prepare` (the script), `write` — `Written` says what the batch's bulk did, which the
worker counts as `onBulkResponse` does. Without one, a worker counts synthetic documents.

Field order and presence follow `BulkByScrollTask.Status.innerXContent` and
`BulkByScrollResponse.toXContent`. Pure: no I/O, no clock (times are arguments, in nanoseconds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from simnode.errors import OpenSearchError

REINDEX_ACTION = "indices:data/write/reindex"
UPDATE_BY_QUERY_ACTION = "indices:data/write/update/byquery"
DELETE_BY_QUERY_ACTION = "indices:data/write/delete/byquery"
ACTION_OF_KIND = {
    "reindex": REINDEX_ACTION,
    "update_by_query": UPDATE_BY_QUERY_ACTION,
    "delete_by_query": DELETE_BY_QUERY_ACTION,
}
KIND_OF_ACTION = {v: k for k, v in ACTION_OF_KIND.items()}
BULK_BY_SCROLL_ACTIONS = tuple(ACTION_OF_KIND.values())
# What the REST response of each shows (`doPrepareRequest(includeCreated, includeUpdated)`).
INCLUDES = {
    "reindex": (True, True),
    "update_by_query": (False, True),
    "delete_by_query": (False, False),
}
DEFAULT_SCROLL_SIZE = 1000
AUTO_SLICE_CEILING = 20
MAX_THROTTLE_WAIT_NANOS = 3600 * 10**9


@dataclass(frozen=True, slots=True)
class Status:
    """`BulkByScrollTask.Status`; `slices` is set only for a leader (None = slice still running)."""

    total: int = 0
    updated: int = 0
    created: int = 0
    deleted: int = 0
    batches: int = 0
    version_conflicts: int = 0
    noops: int = 0
    bulk_retries: int = 0
    search_retries: int = 0
    throttled_nanos: int = 0
    requests_per_second: float = math.inf
    reason_cancelled: str | None = None
    throttled_until_nanos: int = 0
    slice_id: int | None = None
    slices: tuple[Status | OpenSearchError | None, ...] | None = None

    def xcontent(
        self, *, include_created: bool = True, include_updated: bool = True
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.slice_id is not None:
            out["slice_id"] = self.slice_id
        out["total"] = self.total
        if include_updated:
            out["updated"] = self.updated
        if include_created:
            out["created"] = self.created
        out["deleted"] = self.deleted
        out["batches"] = self.batches
        out["version_conflicts"] = self.version_conflicts
        out["noops"] = self.noops
        out["retries"] = {"bulk": self.bulk_retries, "search": self.search_retries}
        out["throttled_millis"] = self.throttled_nanos // 1_000_000
        out["requests_per_second"] = rps_value(self.requests_per_second)
        if self.reason_cancelled is not None:
            out["canceled"] = self.reason_cancelled
        out["throttled_until_millis"] = self.throttled_until_nanos // 1_000_000
        if self.slices:
            out["slices"] = [
                None
                if s is None
                else s.xcontent()
                if isinstance(s, OpenSearchError)
                else s.xcontent(include_created=include_created, include_updated=include_updated)
                for s in self.slices
            ]
        return out


def rps_value(rps: float) -> float:
    """`requests_per_second` as OpenSearch prints it: a float, -1.0 for unlimited."""
    return -1.0 if math.isinf(rps) else float(rps)


def merge(slices: list[Status | OpenSearchError | None], reason_cancelled: str | None) -> Status:
    """`Status(List<StatusOrException>, reasonCancelled)`: sums over the finished slices."""
    done = [s for s in slices if isinstance(s, Status)]
    until = min((s.throttled_until_nanos for s in done), default=0)
    return Status(
        total=sum(s.total for s in done),
        updated=sum(s.updated for s in done),
        created=sum(s.created for s in done),
        deleted=sum(s.deleted for s in done),
        batches=sum(s.batches for s in done),
        version_conflicts=sum(s.version_conflicts for s in done),
        noops=sum(s.noops for s in done),
        bulk_retries=sum(s.bulk_retries for s in done),
        search_retries=sum(s.search_retries for s in done),
        throttled_nanos=sum(s.throttled_nanos for s in done),
        requests_per_second=sum(s.requests_per_second for s in done),
        reason_cancelled=reason_cancelled,
        throttled_until_nanos=until,
        slices=tuple(slices),
    )


def response(
    status: Status,
    took_millis: int,
    *,
    include_created: bool = True,
    include_updated: bool = True,
    failures: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """`BulkByScrollResponse.toXContent`: took, timed_out, the status fields, failures."""
    out: dict[str, Any] = {"took": took_millis, "timed_out": False}
    out.update(status.xcontent(include_created=include_created, include_updated=include_updated))
    out["failures"] = list(failures)
    return out


def response_status(body: dict[str, Any]) -> int:
    """`BulkIndexByScrollResponseContentListener.getStatus`: 200, 408 when timed out, or the
    highest status of its failures (409 for version conflicts)."""
    status = 408 if body.get("timed_out") else 200
    for failure in body.get("failures") or []:
        if isinstance(failure, dict) and isinstance(failure.get("status"), int):
            status = max(status, failure["status"])
    return status


# -- the documents a worker reads and writes ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Written:
    """What the bulk request of one batch did (`onBulkResponse`): the counts of its successful
    items, its version conflicts, and the failures that end the operation (a conflict is one
    unless `conflicts=proceed`), as `BulkItemResponse.Failure` JSON."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    version_conflicts: int = 0
    failures: tuple[dict[str, Any], ...] = ()


class Prepared(Protocol):
    """A batch made into bulk requests (`buildBulk`): how many, and how many hits a script
    turned into noops."""

    @property
    def size(self) -> int: ...

    @property
    def noops(self) -> int: ...


class Scroll(Protocol):
    """One worker's scroll over its share of the operation's snapshot."""

    @property
    def total(self) -> int: ...

    def next_batch(self, size: int, processed: int) -> Sequence[Any]:
        """The next page of hits (empty at the end), cut to what `max_docs` leaves after
        `processed` successful writes."""
        ...

    def prepare(self, hits: Sequence[Any]) -> Prepared:
        """The bulk requests of the hits (the script runs here); raises an `OpenSearchError`
        that fails the operation (a script error)."""
        ...

    def write(self, batch: Any) -> Written:
        """Send the bulk requests of a `prepare`d batch."""
        ...

    def reached_max_docs(self, processed: int) -> bool:
        """`max_docs` is set and `processed` successful writes reached it: the scroll ends."""
        ...

    def close(self, *, refresh: bool) -> None:
        """The scroll ends; `refresh` the indices it wrote when the request asked for it."""
        ...


class HitSource(Protocol):
    """What a node's bulk-by-scroll workers read and write through (the coordinator's document
    store): the operation a `BulkByScrollSpec.operation` names, for one slice of it."""

    def open(self, operation: str, slice_id: int | None, slices: int) -> Scroll: ...


def filter_response(body: dict[str, Any], kind: str) -> dict[str, Any]:
    """The REST response of `kind` (`_delete_by_query` hides created/updated, ...)."""
    include_created, include_updated = INCLUDES.get(kind, (True, True))

    def strip(d: dict[str, Any]) -> dict[str, Any]:
        out = {
            k: v
            for k, v in d.items()
            if not (k == "created" and not include_created)
            and not (k == "updated" and not include_updated)
        }
        if isinstance(out.get("slices"), list):
            out["slices"] = [
                strip(s) if isinstance(s, dict) and "total" in s else s for s in out["slices"]
            ]
        return out

    return strip(body)


def throttle_wait_nanos(batch_size: int, rps: float) -> int:
    """`throttleWaitTime`: how long to wait after a batch of `batch_size` documents."""
    if math.isinf(rps) or batch_size <= 0:
        return 0
    return min(MAX_THROTTLE_WAIT_NANOS, int(1e9 * batch_size / rps))


def auto_slices(shard_counts: list[int]) -> int:
    """`countSlicesBasedOnShards`: the smallest shard count of the source indices, at most 20."""
    least = min(shard_counts) if shard_counts else 1
    return max(1, min(least, AUTO_SLICE_CEILING))


@dataclass(slots=True)
class WorkerState:
    """`WorkerBulkByScrollTaskState`: the counters of one worker and its throttle."""

    kind: str
    total: int
    requests_per_second: float = math.inf
    slice_id: int | None = None
    batches: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    noops: int = 0
    version_conflicts: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    throttled_nanos: int = 0
    # The current throttle sleep: its deadline (monotonic nanos), its length, and the rate it was
    # scheduled at (a rethrottle rescales it).
    sleep_until: int | None = None
    sleep_nanos: int = 0
    sleep_rps: float = math.inf
    processed: int = field(default=0)

    def status(self, now_nanos: int, reason_cancelled: str | None) -> Status:
        until = 0 if self.sleep_until is None else max(0, self.sleep_until - now_nanos)
        return Status(
            total=self.total,
            updated=self.updated,
            created=self.created,
            deleted=self.deleted,
            batches=self.batches,
            version_conflicts=self.version_conflicts,
            noops=self.noops,
            throttled_nanos=self.throttled_nanos,
            requests_per_second=self.requests_per_second,
            reason_cancelled=reason_cancelled,
            throttled_until_nanos=until,
            slice_id=self.slice_id,
        )

    @property
    def successfully_processed(self) -> int:
        """`Status.getSuccessfullyProcessed`: created + updated + deleted."""
        return self.created + self.updated + self.deleted

    def count_written(self, written: Written) -> None:
        """`onBulkResponse`: the batch's successful items, conflicts and failures."""
        self.created += written.created
        self.updated += written.updated
        self.deleted += written.deleted
        self.version_conflicts += written.version_conflicts
        self.failures.extend(written.failures)

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.processed)

    def count_batch(self, docs: int) -> None:
        """A batch of `docs` documents was searched and written."""
        self.batches += 1
        self.processed += docs
        if self.kind == "reindex":
            self.created += docs
        elif self.kind == "update_by_query":
            self.updated += docs
        else:
            self.deleted += docs

    def start_sleep(self, batch_size: int, now_nanos: int) -> int:
        """Schedule the throttle wait after a batch; returns its length in nanos (0 = none)."""
        wait = throttle_wait_nanos(batch_size, self.requests_per_second)
        self.sleep_until = now_nanos + wait if wait else None
        self.sleep_nanos = wait
        self.sleep_rps = self.requests_per_second
        return wait

    def end_sleep(self) -> None:
        """The wait ran out (or was cut short by a cancel): it counts as throttled time."""
        if self.sleep_until is not None:
            self.throttled_nanos += self.sleep_nanos
        self.sleep_until = None
        self.sleep_nanos = 0

    def rethrottle(self, rps: float, now_nanos: int) -> None:
        """`rethrottle`: a faster rate rescales the current wait; a slower one waits its turn."""
        if rps <= 0:
            raise ValueError("requests per second must be more than 0")
        self.requests_per_second = rps
        if self.sleep_until is None or rps < self.sleep_rps:
            return
        remaining = max(0, self.sleep_until - now_nanos)
        new_delay = 0 if math.isinf(rps) else round(remaining * self.sleep_rps / rps)
        self.sleep_until = now_nanos + new_delay
        self.sleep_nanos = new_delay


@dataclass(slots=True)
class LeaderState:
    """`LeaderBulkByScrollTaskState`: the results of the finished slices, by slice id."""

    slices: int
    results: list[Status | OpenSearchError | None] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)  # of the slices, merged

    def __post_init__(self) -> None:
        if not self.results:
            self.results = [None] * self.slices

    def status(self, reason_cancelled: str | None) -> Status:
        return merge(self.results, reason_cancelled)

    def running(self) -> int:
        return sum(1 for r in self.results if r is None)


def status_from_xcontent(body: dict[str, Any]) -> Status:
    """A worker's status back from its JSON (what a slice answers its leader with)."""
    rps = float(body.get("requests_per_second", -1.0))
    retries = body.get("retries", {})
    return Status(
        total=int(body.get("total", 0)),
        updated=int(body.get("updated", 0)),
        created=int(body.get("created", 0)),
        deleted=int(body.get("deleted", 0)),
        batches=int(body.get("batches", 0)),
        version_conflicts=int(body.get("version_conflicts", 0)),
        noops=int(body.get("noops", 0)),
        bulk_retries=int(retries.get("bulk", 0)),
        search_retries=int(retries.get("search", 0)),
        throttled_nanos=int(body.get("throttled_millis", 0)) * 1_000_000,
        requests_per_second=math.inf if rps == -1 else rps,
        reason_cancelled=body.get("canceled"),
        throttled_until_nanos=int(body.get("throttled_until_millis", 0)) * 1_000_000,
        slice_id=body.get("slice_id"),
    )
