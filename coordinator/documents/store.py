"""The documents of an index: versions, sequence numbers, conflicts, and near-real-time visibility.

Everything that decides what a write does to a document lives here, as OpenSearch's
`InternalEngine` decides it (a clock is an argument; no trio, no I/O):

- `index` (`op_type` index or create), `delete` and `update` (a partial `doc` merged into the
  source, `upsert`, `doc_as_upsert`, `detect_noop`) on one `IndexDocs`;
- versions: each write of an id adds one to its `_version`; a delete leaves a tombstone, so the
  next write of that id continues from the deleted version (as within `index.gc_deletes`, which
  tasksim never expires); `version_type=external|external_gte` sets the version the caller gives;
- sequence numbers: one counter per shard (`_seq_no`), primary term 1; an id's shard is
  `shard_of(id, shards)`;
- conflicts raise `VersionConflictError` with OpenSearch's messages: `op_type=create` of a live id,
  `if_seq_no`/`if_primary_term` that do not match (or find no document), an external version that
  is not above (or at least, for `external_gte`) the current one;
- near-real-time: `get` reads the live documents (realtime); searches read the state as of the last
  refresh (`visible()`). A refresh is explicit (`refresh()`), or scheduled every
  `refresh_interval` seconds (default 1 s, -1 disables it): the schedule is applied lazily, when a
  search asks (`searchable(now)`), as a search-idle shard of OpenSearch refreshes when it is
  searched; `next_refresh_at(now)` says when a `refresh=wait_for` write becomes visible.

How a by-query operation uses it (coordinator/documents/__init__.py has the one-line recipes):
take `snapshot = store.targets(names, now)` once — each `Target.docs` is an immutable tuple of the
documents as of a refresh, a point-in-time view that later writes never change — filter it with
`search.matching(targets, query)`, then write batch by batch with `IndexDocs.index(...)` /
`IndexDocs.delete(...)` passing `if_seq_no=doc.seq_no, if_primary_term=doc.primary_term` (update-
and delete-by-query) or `version=doc.version, version_type="external"` (reindex); a
`VersionConflictError` is a version conflict of the operation.

A stored `_source` is shared — by snapshots, by the documents an update merges from, by answers —
and never changed in place: whoever changes a document (a script) builds a new source (for
instance `merge_doc`, or a copy) and indexes that.
"""

from __future__ import annotations

import base64
import random
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from coordinator.documents.mapping import IndexMapping
from coordinator.params import parse_time_value
from simnode.errors import IllegalArgumentError, IndexNotFoundError, OpenSearchError

VERSION_TYPES: Final = ("internal", "external", "external_gte")
DEFAULT_REFRESH_INTERVAL: Final = 1.0
CREATED, UPDATED, DELETED, NOT_FOUND, NOOP = "created", "updated", "deleted", "not_found", "noop"


def shard_of(doc_id: str, shards: int) -> int:
    """The shard an id routes to (OpenSearch hashes `_id` with Murmur3; tasksim with CRC-32)."""
    return zlib.crc32(doc_id.encode()) % max(1, shards)


class VersionConflictError(OpenSearchError):
    """`VersionConflictEngineException`: `[<id>]: version conflict, <explanation>` (409)."""

    type = "version_conflict_engine_exception"
    status = 409

    @classmethod
    def of(cls, docs: IndexDocs, doc_id: str, explanation: str) -> VersionConflictError:
        return cls(
            f"[{doc_id}]: version conflict, {explanation}",
            metadata=docs.shard_metadata(shard_of(doc_id, docs.shards)),
        )


class DocumentMissingError(OpenSearchError):
    """`DocumentMissingException` of an update without upsert: `[<id>]: document missing`."""

    type = "document_missing_exception"
    status = 404

    @classmethod
    def of(cls, docs: IndexDocs, doc_id: str) -> DocumentMissingError:
        return cls(
            f"[{doc_id}]: document missing",
            metadata=docs.shard_metadata(shard_of(doc_id, docs.shards)),
        )


@dataclass(frozen=True)
class Document:
    """One live document and its write metadata. `order` is its place in Lucene's doc order."""

    id: str
    source: dict[str, Any]
    version: int
    seq_no: int
    primary_term: int = 1
    shard: int = 0
    order: int = 0

    def get_body(self, index: str) -> dict[str, Any]:
        """`GetResult.toXContent` of a found document."""
        return {
            "_index": index,
            "_id": self.id,
            "_version": self.version,
            "_seq_no": self.seq_no,
            "_primary_term": self.primary_term,
            "found": True,
            "_source": self.source,
        }


def missing_body(index: str, doc_id: str) -> dict[str, Any]:
    """`GetResult.toXContent` of a missing document (answered with 404)."""
    return {"_index": index, "_id": doc_id, "found": False}


@dataclass(frozen=True)
class WriteResult:
    """What one write did: `result` is created, updated, deleted, not_found or noop."""

    index: str
    id: str
    version: int
    result: str
    seq_no: int
    primary_term: int
    shard: int
    source: dict[str, Any] | None = None  # the document after the write (update's `get`)

    @property
    def status(self) -> int:
        return {CREATED: 201, NOT_FOUND: 404}.get(self.result, 200)

    def body(self, shards: Mapping[str, int], *, forced_refresh: bool = False) -> dict[str, Any]:
        """`DocWriteResponse.innerToXContent`; `shards` is `{"total", "successful", "failed"}`
        (a noop wrote no copy: all zero)."""
        out: dict[str, Any] = {
            "_index": self.index,
            "_id": self.id,
            "_version": self.version,
            "result": self.result,
        }
        if forced_refresh:
            out["forced_refresh"] = True
        out["_shards"] = (
            {"total": 0, "successful": 0, "failed": 0} if self.result == NOOP else dict(shards)
        )
        out["_seq_no"] = self.seq_no
        out["_primary_term"] = self.primary_term
        return out


def parse_version_type(text: str | None) -> str:
    """`VersionType.fromString`."""
    if text is None:
        return "internal"
    if text not in VERSION_TYPES:
        raise IllegalArgumentError(f"No version type match [{text}]")
    return text


def merge_doc(source: dict[str, Any], doc: Mapping[str, Any]) -> dict[str, Any]:
    """`XContentHelper.update`: objects merge recursively, anything else replaces. Values are
    shared, never copied: stored sources are never changed in place."""
    out = dict(source)
    for key, value in doc.items():
        old = out.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            out[key] = merge_doc(old, value)  # as deep as the stored objects (at most 20)
        else:
            out[key] = value
    return out


def same(a: Any, b: Any) -> bool:
    """Deep equality of JSON values, iteratively (arrays of any depth)."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if isinstance(x, dict) and isinstance(y, dict):
            if x.keys() != y.keys():
                return False
            stack.extend((x[k], y[k]) for k in x)
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif type(x) is not type(y) or x != y:
            return False
    return True


class AutoIds:
    """OpenSearch's auto-generated ids (`TimeBasedUUIDGenerator`): 15 bytes — a sequence number,
    the time in milliseconds, a per-cluster "MAC address" — as 20 URL-safe base64 characters.
    Deterministic from the seed."""

    def __init__(self, seed: int | str) -> None:
        rng = random.Random(f"{seed}/ids")
        self._sequence = rng.getrandbits(24)
        self._address = rng.randbytes(6)
        self._last = 0

    def next(self, now_millis: int) -> str:
        self._sequence = (self._sequence + 1) & 0xFFFFFF
        stamp = max(now_millis, self._last)
        if self._sequence == 0:
            stamp += 1
        self._last = stamp
        raw = bytearray(15)
        raw[0] = self._sequence & 0xFF
        raw[1] = (self._sequence >> 16) & 0xFF
        raw[2:8] = (stamp & 0xFFFFFFFFFFFF).to_bytes(6, "big")
        raw[8:14] = self._address
        raw[14] = (self._sequence >> 8) & 0xFF
        return base64.urlsafe_b64encode(bytes(raw)).decode("ascii")


def parse_interval(value: Any) -> float:
    """`index.refresh_interval` (a time setting: `TimeValue.parseTimeValue`, the one grammar of
    coordinator/params.py) as seconds; -1 turns the schedule off."""
    return parse_time_value(str(value), "index.refresh_interval")


@dataclass
class IndexDocs:
    """The documents of one index (all its shards)."""

    name: str
    uuid: str = "_na_"
    shards: int = 1
    mapping: IndexMapping = field(default_factory=IndexMapping)
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    last_refresh: float = 0.0
    _live: dict[str, Document] = field(default_factory=dict)  # by id
    _by_shard: list[dict[str, Document]] = field(default_factory=list)  # in write order
    _tombstones: dict[str, int] = field(default_factory=dict)  # id → version of the delete
    _visible: tuple[Document, ...] = ()
    _seq: list[int] = field(default_factory=list)
    _order: int = 0
    _dirty: bool = False
    # Told of every refresh (the coordinator wakes `refresh=wait_for` writers with it).
    on_refresh: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self._seq:
            self._seq = [-1] * max(1, self.shards)
        if not self._by_shard:
            self._by_shard = [{} for _ in range(max(1, self.shards))]

    def shard_metadata(self, shard: int) -> list[tuple[str, str]]:
        return [("index_uuid", self.uuid), ("shard", str(shard)), ("index", self.name)]

    # -- reads -----------------------------------------------------------------------------------

    def get(self, doc_id: str) -> Document | None:
        """Realtime get: the live document, refreshed or not."""
        return self._live.get(doc_id)

    def __len__(self) -> int:
        return len(self._live)

    def live(self) -> tuple[Document, ...]:
        return tuple(d for shard in self._by_shard for d in shard.values())

    def visible(self) -> tuple[Document, ...]:
        """The documents as of the last refresh, in doc order (shard, then write order). The
        tuple is never changed afterwards: hold it as a point-in-time snapshot."""
        return self._visible

    def searchable(self, now: float) -> tuple[Document, ...]:
        """What a search at `now` sees: a scheduled refresh that is due happens first."""
        due = self.next_refresh_at(now)
        if due is not None and now >= due:
            self.refresh(now)
        return self._visible

    def next_refresh_at(self, now: float) -> float | None:
        """When the next scheduled refresh makes pending writes visible: now when nothing is
        pending, None when the schedule is off (`refresh_interval: -1`)."""
        if not self._dirty:
            return now
        if self.refresh_interval < 0:
            return None
        return self.last_refresh + self.refresh_interval

    @property
    def pending(self) -> bool:
        """Writes not visible to searches yet."""
        return self._dirty

    def refresh(self, now: float) -> None:
        self._visible = self.live()
        self._dirty = False
        self.last_refresh = now
        for listener in list(self.on_refresh):
            listener()

    # -- writes ----------------------------------------------------------------------------------

    def _check(
        self,
        doc_id: str,
        *,
        if_seq_no: int | None,
        if_primary_term: int | None,
        version: int | None,
        version_type: str,
    ) -> None:
        current = self._live.get(doc_id)
        if if_seq_no is not None or if_primary_term is not None:
            seq = -2 if if_seq_no is None else if_seq_no
            term = 0 if if_primary_term is None else if_primary_term
            if current is None:
                raise VersionConflictError.of(
                    self,
                    doc_id,
                    f"required seqNo [{seq}], primary term [{term}]. but no document was found",
                )
            if current.seq_no != seq or current.primary_term != term:
                raise VersionConflictError.of(
                    self,
                    doc_id,
                    f"required seqNo [{seq}], primary term [{term}]. current document has seqNo "
                    f"[{current.seq_no}] and primary term [{current.primary_term}]",
                )
        if version is None or version_type == "internal":
            return
        have = current.version if current is not None else self._tombstones.get(doc_id)
        if have is None:
            return
        if version_type == "external" and have >= version:
            raise VersionConflictError.of(
                self,
                doc_id,
                f"current version [{have}] is higher or equal to the one provided [{version}]",
            )
        if version_type == "external_gte" and have > version:
            raise VersionConflictError.of(
                self,
                doc_id,
                f"current version [{have}] is higher than the one provided [{version}]",
            )

    def _next_seq(self, shard: int) -> int:
        self._seq[shard] += 1
        return self._seq[shard]

    def _write(self, doc_id: str, source: dict[str, Any], version: int) -> Document:
        self.mapping.learn(source)  # first: a refused mapping writes nothing
        shard = shard_of(doc_id, self.shards)
        self._order += 1
        doc = Document(doc_id, source, version, self._next_seq(shard), 1, shard, self._order)
        self._live[doc_id] = doc
        docs = self._by_shard[shard]
        docs.pop(doc_id, None)  # a new write goes to the end, as Lucene appends it
        docs[doc_id] = doc
        self._tombstones.pop(doc_id, None)
        self._dirty = True
        return doc

    def index(
        self,
        doc_id: str,
        source: dict[str, Any],
        *,
        op_type: str = "index",
        if_seq_no: int | None = None,
        if_primary_term: int | None = None,
        version: int | None = None,
        version_type: str = "internal",
    ) -> WriteResult:
        """Index (or, with `op_type="create"`, create) one document."""
        current = self._live.get(doc_id)
        if op_type == "create" and current is not None:
            raise VersionConflictError.of(
                self, doc_id, f"document already exists (current version [{current.version}])"
            )
        self._check(
            doc_id,
            if_seq_no=if_seq_no,
            if_primary_term=if_primary_term,
            version=version,
            version_type=version_type,
        )
        if version is not None and version_type != "internal":
            new_version = version
        else:
            before = current.version if current is not None else self._tombstones.get(doc_id, 0)
            new_version = before + 1
        doc = self._write(doc_id, source, new_version)
        result = UPDATED if current is not None else CREATED
        return WriteResult(
            self.name, doc_id, doc.version, result, doc.seq_no, 1, doc.shard, doc.source
        )

    def delete(
        self,
        doc_id: str,
        *,
        if_seq_no: int | None = None,
        if_primary_term: int | None = None,
        version: int | None = None,
        version_type: str = "internal",
    ) -> WriteResult:
        """Delete one document; a missing id is `not_found` (and still takes a sequence number)."""
        self._check(
            doc_id,
            if_seq_no=if_seq_no,
            if_primary_term=if_primary_term,
            version=version,
            version_type=version_type,
        )
        current = self._live.pop(doc_id, None)
        shard = shard_of(doc_id, self.shards)
        self._by_shard[shard].pop(doc_id, None)
        if version is not None and version_type != "internal":
            new_version = version
        else:
            before = current.version if current is not None else self._tombstones.get(doc_id, 0)
            new_version = before + 1
        self._tombstones[doc_id] = new_version
        seq_no = self._next_seq(shard)
        if current is not None:
            self._dirty = True
        result = DELETED if current is not None else NOT_FOUND
        return WriteResult(self.name, doc_id, new_version, result, seq_no, 1, shard)

    def update(
        self,
        doc_id: str,
        *,
        doc: dict[str, Any] | None = None,
        upsert: dict[str, Any] | None = None,
        doc_as_upsert: bool = False,
        detect_noop: bool = True,
        if_seq_no: int | None = None,
        if_primary_term: int | None = None,
    ) -> WriteResult:
        """`UpdateHelper.prepare` for a partial document: merge `doc` into the source (a noop when
        nothing changes and `detect_noop`), or create from `upsert` / `doc` (`doc_as_upsert`)."""
        current = self._live.get(doc_id)
        if current is None:
            if if_seq_no is not None or if_primary_term is not None:
                self._check(
                    doc_id,
                    if_seq_no=if_seq_no,
                    if_primary_term=if_primary_term,
                    version=None,
                    version_type="internal",
                )
            if upsert is not None:
                return self.index(doc_id, upsert)
            if doc_as_upsert and doc is not None:
                return self.index(doc_id, doc)
            raise DocumentMissingError.of(self, doc_id)
        merged = merge_doc(current.source, doc or {})
        if detect_noop and same(merged, current.source):
            return WriteResult(
                self.name,
                doc_id,
                current.version,
                NOOP,
                current.seq_no,
                current.primary_term,
                current.shard,
                current.source,
            )
        return self.index(doc_id, merged, if_seq_no=if_seq_no, if_primary_term=if_primary_term)


@dataclass
class DocumentStore:
    """Every index's documents, by index name, and the cluster's auto-id generator."""

    seed: int | str = 0
    _indices: dict[str, IndexDocs] = field(default_factory=dict)
    ids: AutoIds = field(init=False)

    def __post_init__(self) -> None:
        self.ids = AutoIds(self.seed)

    def open(
        self,
        name: str,
        *,
        uuid: str = "_na_",
        shards: int = 1,
        mapping: IndexMapping | None = None,
        refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
        now: float = 0.0,
    ) -> IndexDocs:
        docs = IndexDocs(
            name,
            uuid,
            shards,
            mapping if mapping is not None else IndexMapping(),
            refresh_interval,
            last_refresh=now,
        )
        self._indices[name] = docs
        return docs

    def drop(self, name: str) -> None:
        """Forget an index's documents; whoever waits for its next refresh is told now."""
        docs = self._indices.pop(name, None)
        if docs is not None:
            for listener in list(docs.on_refresh):
                listener()

    def get(self, name: str) -> IndexDocs | None:
        return self._indices.get(name)

    def __getitem__(self, name: str) -> IndexDocs:
        docs = self._indices.get(name)
        if docs is None:
            raise IndexNotFoundError.of(name)
        return docs

    def __contains__(self, name: str) -> bool:
        return name in self._indices

    def names(self) -> list[str]:
        return list(self._indices)

    def refresh(self, names: Iterable[str], now: float) -> None:
        for name in names:
            self[name].refresh(now)

    def targets(
        self, names: Iterable[str], now: float, synthetic: Mapping[str, int] | None = None
    ) -> list[Target]:
        """A search's view of `names` at `now` (a due scheduled refresh happens first): each
        `Target.docs` is a point-in-time snapshot, with a copy of the mapping as it is now — later
        writes change neither, so a target may be searched in another thread. `synthetic` adds
        documents an index claims without holding them (coordinator/indices.py `Index.docs`)."""
        out = []
        for name in names:
            docs = self[name]
            count = (synthetic or {}).get(name, 0)
            out.append(Target(name, docs.searchable(now), docs.mapping.copy(), count))
        return out


@dataclass(frozen=True)
class Target:
    """One index as a search sees it: its documents as of a refresh, its mapping, and how many
    synthetic documents it claims besides (they match only a query that matches everything)."""

    name: str
    docs: tuple[Document, ...]
    mapping: IndexMapping
    synthetic: int = 0
