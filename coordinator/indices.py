"""The index model: just enough of an index for operations to build realistic task trees.

An index has a name, a *synthetic* document count (the volume it claims without holding it: the
demo's, scenarios' and `/_sim/indices`' `docs`), its real documents (`Indices.documents`, the store
of coordinator/documents/, opened and dropped with the index), and shards placed on data nodes
(primary on one node, replicas on the next ones, round-robin from a start that depends on the
name). It decides which nodes get shard-level children and how long the work takes (`Timing`,
from the synthetic and the real documents of a shard). Hidden indices (`.tasks`) are left out of
`*` and `_all` unless the pattern starts with a dot, as OpenSearch resolves them. Names are checked with OpenSearch's rules and messages
(`MetadataCreateIndexService.validateIndexOrAliasName`); expressions resolve like
`IndexNameExpressionResolver` for the simple cases (comma lists, `*` wildcards, `_all`).
Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from dataclasses import dataclass, field, replace

from coordinator.documents import DocumentStore as DocumentStore
from coordinator.documents import IndexDocs, IndexMapping
from simnode.errors import (
    IndexNotFoundError,
    InvalidIndexNameError,
    ResourceAlreadyExistsError,
)
from simnode.regex import simple_match

INVALID_CHARS = ("\\", "/", "*", "?", '"', "<", ">", "|", " ", ",", "#", ":")
DEFAULT_SHARDS = 1
DEFAULT_REPLICAS = 1


@dataclass(frozen=True)
class Timing:
    """How long simulated work takes. Defaults: a bulk-by-scroll batch of 1000 documents takes
    50 ms; a query phase costs 5 ms plus 1 ms per 10,000 documents of its shard (at most 10 min);
    a shard-level write of a bulk request 2 ms."""

    batch_millis_per_1000_docs: float = 50.0
    query_base_millis: int = 5
    query_docs_per_milli: int = 10_000
    query_max_millis: int = 600_000
    fetch_millis: int = 2
    shard_write_millis: int = 2

    def batch_millis(self, batch_size: int) -> int:
        return max(1, round(self.batch_millis_per_1000_docs * batch_size / 1000))

    def query_millis(self, shard_docs: int) -> int:
        return min(
            self.query_max_millis, self.query_base_millis + shard_docs // self.query_docs_per_milli
        )


@dataclass(frozen=True)
class Shard:
    index: str
    shard: int
    primary: str  # node id
    replicas: tuple[str, ...]


@dataclass(frozen=True)
class Index:
    name: str
    uuid: str
    docs: int
    shards: tuple[Shard, ...]
    number_of_replicas: int
    hidden: bool = False
    auto_expand_replicas: str | None = None
    priority: int | None = None  # `index.priority` (recovery order), when set

    def shard_docs(self, shard: int) -> int:
        """The synthetic documents of one shard."""
        count = len(self.shards)
        return self.docs // count + (1 if shard < self.docs % count else 0)

    def shards_header(self) -> dict[str, int]:
        """`_shards` of a write or refresh of every shard: copies wanted, copies assigned."""
        total = len(self.shards) * (1 + self.number_of_replicas)
        done = sum(1 + len(s.replicas) for s in self.shards)
        return {"total": total, "successful": done, "failed": 0}

    def shard_header(self, shard: int) -> dict[str, int]:
        """`_shards` of a write to one shard (`ReplicationResponse.ShardInfo`)."""
        copies = 1 + len(self.shards[shard].replicas)
        return {"total": 1 + self.number_of_replicas, "successful": copies, "failed": 0}


def validate_index_name(name: str) -> None:
    def bad(why: str) -> InvalidIndexNameError:
        return InvalidIndexNameError(
            f"Invalid index name [{name}], {why}",
            metadata=[("index_uuid", "_na_"), ("index", name)],
        )

    if not name:
        raise bad("must not be empty")
    if name != name.lower():
        raise bad("must be lowercase")
    for ch in INVALID_CHARS:
        if ch in name:
            raise bad(f"must not contain the following characters [{', '.join(INVALID_CHARS)}]")
    if name[0] in "_-+":
        raise bad("must not start with '_', '-', or '+'")
    if name in (".", ".."):
        raise bad("must not be '.' or '..'")
    if len(name.encode()) > 255:
        raise bad("index name is too long, (" + str(len(name.encode())) + " > 255)")


def _uuid(name: str, generation: int) -> str:
    raw = hashlib.sha256(f"{name}:{generation}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@dataclass
class Indices:
    """Every index of the cluster, by name."""

    _indices: dict[str, Index] = field(default_factory=dict)
    _generation: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    documents: DocumentStore = field(default_factory=DocumentStore)

    def __contains__(self, name: str) -> bool:
        return name in self._indices

    def get(self, name: str) -> Index | None:
        return self._indices.get(name)

    def all(self) -> list[Index]:
        return list(self._indices.values())

    def create(
        self,
        name: str,
        data_nodes: list[str],
        *,
        shards: int = DEFAULT_SHARDS,
        replicas: int = DEFAULT_REPLICAS,
        docs: int = 0,
        hidden: bool = False,
        auto_expand_replicas: str | None = None,
        priority: int | None = None,
        mapping: IndexMapping | None = None,
        refresh_interval: float = 1.0,
        now: float = 0.0,
    ) -> Index:
        validate_index_name(name)
        if name in self._indices:
            existing = self._indices[name]
            raise ResourceAlreadyExistsError(
                f"index [{name}/{existing.uuid}] already exists",
                metadata=[("index_uuid", existing.uuid), ("index", name)],
            )
        nodes = list(data_nodes)
        start = int(hashlib.sha256(name.encode()).hexdigest(), 16) % max(1, len(nodes))
        placed = []
        for i in range(shards):
            copies: tuple[str, ...]
            if not nodes:
                primary, copies = "", ()
            else:
                order = [nodes[(start + i + k) % len(nodes)] for k in range(len(nodes))]
                primary, copies = order[0], tuple(order[1 : 1 + replicas])
            placed.append(Shard(name, i, primary, copies))
        index = Index(
            name,
            _uuid(name, next(self._generation)),
            docs,
            tuple(placed),
            replicas,
            hidden,
            auto_expand_replicas,
            priority,
        )
        self._indices[name] = index
        self.documents.open(
            name,
            uuid=index.uuid,
            shards=shards,
            mapping=mapping,
            refresh_interval=refresh_interval,
            now=now,
        )
        return index

    def settings_body(self, index: Index) -> dict[str, str]:
        """The `index` settings `GET /{index}` and `GET /{index}/_settings` show."""
        settings: dict[str, str] = {}
        interval = self.docs(index.name).refresh_interval
        if interval != 1.0:
            settings["refresh_interval"] = "-1" if interval < 0 else f"{interval:g}s"
        if index.hidden:
            settings["hidden"] = "true"
        settings["number_of_shards"] = str(len(index.shards))
        if index.auto_expand_replicas is not None:
            settings["auto_expand_replicas"] = index.auto_expand_replicas
        settings["number_of_replicas"] = str(index.number_of_replicas)
        if index.priority is not None:
            settings["priority"] = str(index.priority)
        settings["uuid"] = index.uuid
        settings["provided_name"] = index.name
        return settings

    def set_replicas(self, name: str, replicas: int, data_nodes: list[str]) -> Index:
        """`index.number_of_replicas` changed: primaries stay, replicas go to the next data
        nodes after each primary (as many as there are)."""
        index = self._indices[name]
        placed = []
        for shard in index.shards:
            others = [n for n in data_nodes if n != shard.primary]
            start = data_nodes.index(shard.primary) if shard.primary in data_nodes else 0
            ring = others[start:] + others[:start]
            placed.append(replace(shard, replicas=tuple(ring[:replicas])))
        updated = replace(index, shards=tuple(placed), number_of_replicas=replicas)
        self._indices[name] = updated
        return updated

    def docs(self, name: str) -> IndexDocs:
        """The real documents of an index (`index_not_found_exception` when there is none)."""
        if name not in self._indices:
            raise IndexNotFoundError.of(name)
        return self.documents[name]

    def delete(self, expression: str) -> list[Index]:
        gone = self.resolve(expression)
        for index in gone:
            del self._indices[index.name]
            self.documents.drop(index.name)
        return gone

    def resolve(self, expression: str, *, allow_no_indices: bool = True) -> list[Index]:
        """Comma-separated names and `*` patterns, `_all`/`*` for every index. A missing concrete
        name is `index_not_found_exception`; patterns may match nothing."""
        found: dict[str, Index] = {}
        for part in expression.split(","):
            if not part:
                continue
            if part in ("_all", "*"):
                found.update({n: i for n, i in self._indices.items() if not i.hidden})
            elif "*" in part:
                found.update(
                    {
                        n: i
                        for n, i in self._indices.items()
                        if simple_match(part, n) and (not i.hidden or part.startswith("."))
                    }
                )
            elif part in self._indices:
                found[part] = self._indices[part]
            else:
                raise IndexNotFoundError.of(part)
        if not found and not allow_no_indices:
            raise IndexNotFoundError.of(expression)
        return list(found.values())

    def add_docs(self, name: str, delta: int) -> None:
        index = self._indices.get(name)
        if index is not None:
            self._indices[name] = replace(index, docs=max(0, index.docs + delta))
