"""`_reindex`, `_update_by_query` and `_delete_by_query` on documents: what each hit becomes, and
what its write did — everything that decides the counts, versions and conflicts of those operations.

An `Operation` is one request. When its first worker starts (`open`), it takes its snapshot: the
documents of the source indices that match the query, as of their last refresh (a point-in-time
view later writes never change), plus the synthetic documents an index claims without holding them
(they match only a query that matches everything; writing them moves counts, as before documents
were real). Each worker (`Scroll`) takes its slice of the snapshot (a document's slice is a hash of
its `_id`, synthetic documents are shared out evenly; `max_docs` is split between slices, rounding
down, as `AbstractBulkByScrollRequest.doForSlice`) and works through it page by page:

- `prepare` (`buildBulk` and the `ScriptApplier`): reindex makes an index request into the
  destination (`op_type`, `version_type`: `internal` overwrites, `external` keeps the source's
  version), update-by-query re-indexes the document with `if_seq_no`/`if_primary_term` of the
  snapshot, delete-by-query deletes with them. A script (coordinator/painless.py) may change the
  source, set `ctx.op` to `noop` (counted) or `delete`, and — for reindex — `_index`, `_id`
  (`null`: an automatic id), `_version` (`null`: overwrite), `_routing`;
- `write` (`onBulkResponse`): created or updated (by the result of each index request), deleted;
  a version conflict (409) is counted, and unless `conflicts=proceed` it is also a failure that
  ends the operation after this batch, as is any other failed item.

The node's worker (simnode/node.py) drives a `Scroll` through the `HitSource` protocol of
simnode/bulk_by_scroll.py, with the task tree and throttling around it. Pure: no I/O; the clock
and the creation of a missing destination index are callables the REST layer gives.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from coordinator.documents import (
    CREATED,
    DocumentStore,
    IndexDocs,
    Query,
    SourceFilter,
    Target,
    matching,
)
from coordinator.documents.search import SortField, _ordered
from coordinator.painless import Script, execute
from simnode.bulk_by_scroll import Written
from simnode.errors import IllegalArgumentError, IndexNotFoundError, OpenSearchError

OP_TYPES = ("noop", "index", "delete")


@dataclass(frozen=True, slots=True)
class Hit:
    """A search hit of the snapshot: the document as the operation read it."""

    index: str
    id: str
    source: dict[str, Any]
    version: int
    seq_no: int
    primary_term: int
    routing: str | None = None


@dataclass(frozen=True, slots=True)
class Synthetic:
    """`count` documents an index claims without holding them (one run of a page)."""

    index: str
    count: int


@dataclass(frozen=True)
class Dest:
    """The `dest` of a reindex."""

    index: str
    op_type: str = "index"
    version_type: str = "internal"


@dataclass
class Request:
    """One bulk item a hit became."""

    op: str  # index, create, delete
    index: str
    id: str | None
    source: dict[str, Any] | None = None
    version: int | None = None
    version_type: str = "internal"
    if_seq_no: int | None = None
    if_primary_term: int | None = None
    routing: str | None = None


@dataclass
class Batch:
    """A page made into bulk requests (`Prepared` of simnode/bulk_by_scroll.py)."""

    requests: list[Request] = field(default_factory=list)
    synthetic: list[Synthetic] = field(default_factory=list)
    noops: int = 0

    @property
    def size(self) -> int:
        return len(self.requests) + sum(s.count for s in self.synthetic)


@dataclass
class Env:
    """What the operation needs from the cluster: the documents, a clock (seconds), a way to
    create a missing destination index (and its documents), automatic ids, and the synthetic
    document counts of the index model."""

    store: DocumentStore
    now: Callable[[], float]
    create_index: Callable[[str], IndexDocs]
    auto_id: Callable[[], str]
    synthetic: Callable[[str], int] = lambda _name: 0
    add_synthetic: Callable[[str, int], None] = lambda _name, _n: None


@dataclass
class Operation:
    """One `_reindex` / `_update_by_query` / `_delete_by_query` request on documents."""

    kind: str
    sources: list[str]
    query: Query
    env: Env
    dest: Dest | None = None
    script: Script | None = None
    abort_on_version_conflict: bool = True
    max_docs: int = -1
    refresh: bool = False
    source_filter: SourceFilter | None = None
    sort: tuple[SortField, ...] = ()
    manual_slice: tuple[int, int] | None = None  # the request's own `slice: {id, max}`
    _hits: list[Hit] | None = None
    _synthetic: list[Synthetic] = field(default_factory=list)

    def targets(self) -> list[Target]:
        """The sources as a search sees them now (on the loop: a due refresh happens first);
        each `Target.docs` is an immutable tuple."""
        present = [n for n in self.sources if n in self.env.store]
        return self.env.store.targets(
            present, self.env.now(), {n: self.env.synthetic(n) for n in present}
        )

    def match(self, targets: list[Target]) -> None:
        """The point-in-time view of the matching documents — pure work over the immutable
        `targets`, which a caller may run in a worker thread (a scan of many documents)."""
        hits = []
        found = matching(targets, self.query)
        if self.sort:
            found = [row for row, _ in _ordered(found, self.sort)]
        if self.manual_slice is not None:
            slice_id, most = self.manual_slice
            found = [(t, d) for t, d in found if _slice_of(d.id, most) == slice_id]
        for target, doc in found:
            source = doc.source
            if self.source_filter is not None:
                source = self.source_filter.apply(source)
            hits.append(Hit(target.name, doc.id, source, doc.version, doc.seq_no, doc.primary_term))
        synthetic = []
        if self.query.matches_all:
            synthetic = [Synthetic(t.name, t.synthetic) for t in targets if t.synthetic > 0]
        if self.manual_slice is not None:
            slice_id, most = self.manual_slice
            synthetic = [
                Synthetic(run.index, share)
                for run in synthetic
                if (share := run.count // most + (1 if slice_id < run.count % most else 0))
            ]
        self._hits, self._synthetic = hits, synthetic

    def snapshot(self) -> None:
        """Take the snapshot now, if it was not taken yet (the first worker does)."""
        if self._hits is None:
            self.match(self.targets())

    def open(self, slice_id: int | None, slices: int) -> Scroll:
        self.snapshot()
        assert self._hits is not None
        slices = max(1, slices)
        sid = slice_id or 0
        if slices == 1:
            hits, synthetic = list(self._hits), list(self._synthetic)
        else:
            hits = [h for h in self._hits if _slice_of(h.id, slices) == sid]
            synthetic = []
            for run in self._synthetic:
                share = run.count // slices + (1 if sid < run.count % slices else 0)
                if share:
                    synthetic.append(Synthetic(run.index, share))
        max_docs = self.max_docs
        if max_docs != -1 and slices > 1:
            max_docs = max_docs // slices
        return Scroll(self, hits, synthetic, max_docs)


class Scroll:
    """One worker's pages over its slice (`HitSource`'s `Scroll`)."""

    def __init__(
        self, op: Operation, hits: list[Hit], synthetic: list[Synthetic], max_docs: int
    ) -> None:
        self.op = op
        self.hits = hits
        self.synthetic = synthetic
        self.max_docs = max_docs
        matched = len(hits) + sum(s.count for s in synthetic)
        self.total = matched if max_docs == -1 else min(matched, max_docs)
        self._pos = 0
        self.written_indices: set[str] = set()

    def reached_max_docs(self, processed: int) -> bool:
        return self.max_docs != -1 and processed >= self.max_docs

    def next_batch(self, size: int, processed: int) -> list[Hit | Synthetic]:
        """The next scroll page (`size` hits, at most `max_docs` of them), cut to what
        `max_docs` leaves after `processed` successful writes."""
        if self.max_docs != -1:
            size = min(size, self.max_docs)
        page = self._page(self._pos, size)
        self._pos += sum(1 if isinstance(h, Hit) else h.count for h in page)
        if self.max_docs != -1 and page:
            page = _cut(page, max(0, self.max_docs - processed))
        return page

    def _page(self, start: int, size: int) -> list[Hit | Synthetic]:
        out: list[Hit | Synthetic] = list(self.hits[start : start + size])
        start = max(0, start - len(self.hits))
        left = size - len(out)
        for run in self.synthetic:
            if left <= 0:
                break
            if start >= run.count:
                start -= run.count
                continue
            take = min(left, run.count - start)
            out.append(Synthetic(run.index, take))
            left -= take
            start = 0
        return out

    # -- buildBulk ---------------------------------------------------------------------------------

    def prepare(self, hits: Sequence[Hit | Synthetic]) -> Batch:
        batch = Batch()
        for hit in hits:
            if isinstance(hit, Synthetic):
                batch.synthetic.append(hit)
                continue
            request: Request | None = self._request(hit)
            if self.op.script is not None and request is not None:
                request = self._apply_script(request, hit)
            if request is None:
                batch.noops += 1
            else:
                batch.requests.append(request)
        return batch

    def _request(self, hit: Hit) -> Request:
        op = self.op
        if op.kind == "reindex":
            assert op.dest is not None
            external = op.dest.version_type != "internal"
            return Request(
                "create" if op.dest.op_type == "create" else "index",
                op.dest.index,
                hit.id,
                copy.deepcopy(hit.source),
                version=hit.version if external else None,
                version_type=op.dest.version_type,
                routing=hit.routing,
            )
        if op.kind == "update_by_query":
            return Request(
                "index",
                hit.index,
                hit.id,
                copy.deepcopy(hit.source),
                if_seq_no=hit.seq_no,
                if_primary_term=hit.primary_term,
                routing=hit.routing,
            )
        return Request(
            "delete",
            hit.index,
            hit.id,
            if_seq_no=hit.seq_no,
            if_primary_term=hit.primary_term,
            routing=hit.routing,
        )

    def _apply_script(self, request: Request, hit: Hit) -> Request | None:
        """`ScriptApplier.apply`, with reindex's and update-by-query's `scriptChanged*`."""
        op = self.op
        assert op.script is not None
        fetched_version = op.kind == "reindex" and request.version is not None
        old_version = hit.version if fetched_version else -1
        ctx: dict[str, Any] = {
            "_index": hit.index,
            "_id": hit.id,
            "_version": old_version,
            "_routing": hit.routing,
            "_source": request.source,
            "op": "index",
        }
        execute(op.script, ctx)
        new_op = ctx.pop("op", None)
        if new_op is None:
            raise IllegalArgumentError("Script cleared operation type")
        source = ctx.pop("_source", None)
        request.source = source if isinstance(source, dict) else {}
        for key, old in (
            ("_index", hit.index),
            ("_id", hit.id),
            ("_version", old_version),
            ("_routing", hit.routing),
        ):
            new = ctx.pop(key, None)
            if new != old or (new is None) != (old is None):
                self._changed(request, key, new)
        op_type = str(new_op).lower()
        if op_type not in OP_TYPES:
            raise IllegalArgumentError(
                f"Operation type [{op_type}] not allowed, only [noop, index, delete] are allowed"
            )
        if op_type == "noop":
            return None
        if op_type == "delete":
            return Request(
                "delete",
                request.index,
                request.id,
                version=None if request.version_type == "internal" else request.version,
                version_type="internal",
                routing=request.routing,
            )
        if ctx:
            raise IllegalArgumentError(f"Invalid fields added to context [{','.join(ctx)}]")
        return request

    def _changed(self, request: Request, key: str, value: Any) -> None:
        if self.op.kind != "reindex":
            if key == "_routing":
                request.routing = None if value is None else str(value)
                return
            raise IllegalArgumentError(f"Modifying [{key}] not allowed")
        if key == "_index":
            if value is None:
                raise IllegalArgumentError("Can't reindex without a destination index!")
            request.index = str(value)
        elif key == "_id":
            request.id = None if value is None else str(value)
        elif key == "_version":
            if value is None:
                request.version, request.version_type = None, "internal"
            elif isinstance(value, int) and not isinstance(value, bool):
                request.version = value
            else:
                raise IllegalArgumentError(
                    f"_version may only be set to an int or a long but was [{value}] with type [{type(value).__name__}]"
                )
        elif key == "_routing":
            request.routing = None if value is None else str(value)

    # -- onBulkResponse -------------------------------------------------------------------------

    def write(self, batch: Batch) -> Written:
        created = updated = deleted = conflicts = 0
        failures: list[dict[str, Any]] = []
        env = self.op.env
        for run in batch.synthetic:
            if self.op.kind == "reindex":
                assert self.op.dest is not None
                self._docs_for_write(self.op.dest.index)
                env.add_synthetic(self.op.dest.index, run.count)
                created += run.count
                self.written_indices.add(self.op.dest.index)
            elif self.op.kind == "update_by_query":
                updated += run.count
                self.written_indices.add(run.index)
            else:
                env.add_synthetic(run.index, -run.count)
                deleted += run.count
                self.written_indices.add(run.index)
        for request in batch.requests:
            try:
                if request.op == "delete":
                    docs = env.store.get(request.index)
                    if docs is None:  # a bulk delete does not create its index
                        raise IndexNotFoundError.of(request.index)
                    docs.delete(
                        request.id or "",
                        if_seq_no=request.if_seq_no,
                        if_primary_term=request.if_primary_term,
                        version=request.version,
                        version_type=request.version_type,
                    )
                    deleted += 1
                else:
                    docs = self._docs_for_write(request.index)
                    result = docs.index(
                        request.id if request.id is not None else env.auto_id(),
                        request.source or {},
                        op_type=request.op,
                        if_seq_no=request.if_seq_no,
                        if_primary_term=request.if_primary_term,
                        version=request.version,
                        version_type=request.version_type,
                    )
                    if result.result == CREATED:
                        created += 1
                    else:
                        updated += 1
            except OpenSearchError as e:
                if e.status == 409:
                    conflicts += 1
                    if not self.op.abort_on_version_conflict:
                        continue
                failures.append(failure(request.index, request.id, e))
                continue
            self.written_indices.add(request.index)
        return Written(created, updated, deleted, conflicts, tuple(failures))

    def _docs_for_write(self, name: str) -> IndexDocs:
        docs = self.op.env.store.get(name)
        return docs if docs is not None else self.op.env.create_index(name)

    def close(self, *, refresh: bool) -> None:
        """`refreshAndFinish`: refresh what this worker wrote when the request asked for it."""
        if refresh and self.op.refresh:
            store = self.op.env.store
            self.op.env.store.refresh(
                [n for n in sorted(self.written_indices) if n in store], self.op.env.now()
            )


def _slice_of(doc_id: str, slices: int) -> int:
    """The slice a document is in (OpenSearch hashes `_id`; tasksim with CRC-32). A manual
    `slice` and the slices of `slices=N` share out the documents the same way."""
    return zlib.crc32(doc_id.encode()) % slices


def failure(index: str, doc_id: str | None, error: OpenSearchError) -> dict[str, Any]:
    """`BulkItemResponse.Failure.toXContent`: index, id, cause, status."""
    out: dict[str, Any] = {"index": index}
    if doc_id is not None:
        out["id"] = doc_id
    out["cause"] = error.xcontent()
    out["status"] = error.status
    return out


def _cut(page: list[Hit | Synthetic], limit: int) -> list[Hit | Synthetic]:
    out: list[Hit | Synthetic] = []
    for hit in page:
        n = 1 if isinstance(hit, Hit) else hit.count
        if limit <= 0:
            break
        if n <= limit:
            out.append(hit)
            limit -= n
        else:
            assert isinstance(hit, Synthetic)
            out.append(Synthetic(hit.index, limit))
            limit = 0
    return out


class Operations:
    """The operations running on the coordinating node, by id (the node's `HitSource`)."""

    def __init__(self) -> None:
        self._ops: dict[str, Operation] = {}
        self._next = 0

    def add(self, op: Operation) -> str:
        self._next += 1
        key = f"op-{self._next}"
        self._ops[key] = op
        return key

    def drop(self, key: str) -> None:
        self._ops.pop(key, None)

    def open(self, operation: str, slice_id: int | None, slices: int) -> Scroll:
        op = self._ops.get(operation)
        if op is None:
            raise IllegalArgumentError(f"no by-query operation [{operation}] on this node")
        return op.open(slice_id, slices)
