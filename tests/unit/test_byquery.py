"""`_reindex`, `_update_by_query`, `_delete_by_query` on a real document store (coordinator/byquery.py):
the counts, versions and conflicts OpenSearch's `AbstractAsyncBulkByScrollAction` reports, driven
page by page as the node's worker drives them (simnode/node.py `_documents_worker`)."""

from __future__ import annotations

from typing import Any

import pytest

from coordinator.byquery import Dest, Env, Operation
from coordinator.documents import MATCH_ALL, DocumentStore, IndexDocs, parse_query
from coordinator.painless import ScriptError, parse_script
from simnode.bulk_by_scroll import WorkerState
from simnode.errors import IllegalArgumentError


class World:
    def __init__(self) -> None:
        self.store = DocumentStore()
        self.synthetic: dict[str, int] = {}
        self.clock = 0.0
        self.created: list[str] = []
        self.env = Env(
            store=self.store,
            now=lambda: self.clock,
            create_index=self.create,
            auto_id=lambda: self.store.ids.next(0),
            synthetic=lambda n: self.synthetic.get(n, 0),
            add_synthetic=lambda n, d: self.synthetic.__setitem__(n, self.synthetic.get(n, 0) + d),
        )

    def create(self, name: str) -> IndexDocs:
        self.created.append(name)
        return self.store.open(name, uuid=f"uuid-{name}", refresh_interval=-1)

    def index(self, name: str, docs: dict[str, dict[str, Any]], *, refresh: bool = True) -> None:
        target = self.store.get(name) or self.create(name)
        for doc_id, source in docs.items():
            target.index(doc_id, source)
        if refresh:
            target.refresh(self.clock)

    def op(self, kind: str, sources: list[str], **kwargs: Any) -> Operation:
        return Operation(kind, sources, kwargs.pop("query", MATCH_ALL), self.env, **kwargs)


def drive(op: Operation, size: int = 1000, slices: int = 1) -> list[WorkerState]:
    """The node's worker loop, without the task tree: page, count the batch, prepare, write."""
    workers = []
    for sid in range(slices):
        scroll = op.open(sid if slices > 1 else None, slices)
        worker = WorkerState(kind=op.kind, total=scroll.total)
        while True:
            hits = scroll.next_batch(size, worker.successfully_processed)
            if not hits:
                break
            worker.batches += 1
            batch = scroll.prepare(hits)
            worker.noops += batch.noops
            if batch.size:
                written = scroll.write(batch)
                worker.count_written(written)
                if written.failures or scroll.reached_max_docs(worker.successfully_processed):
                    break
        scroll.close(refresh=True)
        workers.append(worker)
    return workers


def counts(w: WorkerState) -> dict[str, int]:
    return {
        "total": w.total,
        "created": w.created,
        "updated": w.updated,
        "deleted": w.deleted,
        "batches": w.batches,
        "version_conflicts": w.version_conflicts,
        "noops": w.noops,
    }


def test_reindex_overwrites_an_existing_id_instead_of_appending() -> None:
    w = World()
    w.index("src", {"1": {"a": 1}, "2": {"a": 2}})
    w.index("dest", {"1": {"old": True}})
    (worker,) = drive(w.op("reindex", ["src"], dest=Dest("dest"), refresh=True))
    assert counts(worker) == {
        "total": 2, "created": 1, "updated": 1, "deleted": 0,
        "batches": 1, "version_conflicts": 0, "noops": 0,
    }  # fmt: skip
    dest = w.store["dest"]
    assert len(dest) == 2
    doc = dest.get("1")
    assert doc is not None and doc.source == {"a": 1} and doc.version == 2
    assert len(dest.visible()) == 2  # refresh=true made the writes visible


def test_reindex_op_type_create_conflicts_and_aborts_with_the_failure() -> None:
    w = World()
    w.index("src", {"1": {"a": 1}, "2": {"a": 2}})
    w.index("dest", {"1": {"old": True}})
    (worker,) = drive(w.op("reindex", ["src"], dest=Dest("dest", op_type="create")))
    assert (worker.created, worker.version_conflicts, worker.batches) == (1, 1, 1)
    (failure,) = worker.failures
    assert failure == {
        "index": "dest",
        "id": "1",
        "cause": {
            "type": "version_conflict_engine_exception",
            "reason": "[1]: version conflict, document already exists (current version [1])",
            "index_uuid": "uuid-dest",
            "shard": "0",
            "index": "dest",
        },
        "status": 409,
    }


def test_conflicts_proceed_counts_without_failing() -> None:
    w = World()
    w.index("src", {str(i): {"n": i} for i in range(5)})
    w.index("dest", {"1": {}, "3": {}})
    op = w.op(
        "reindex", ["src"], dest=Dest("dest", op_type="create"), abort_on_version_conflict=False
    )
    (worker,) = drive(op, size=2)
    assert (worker.created, worker.version_conflicts, worker.batches) == (3, 2, 3)
    assert worker.failures == []


def test_reindex_external_versions() -> None:
    w = World()
    src = w.create("src")
    src.index("1", {"v": "new"}, version=5, version_type="external")
    src.index("2", {"v": "old"}, version=1, version_type="external")
    src.refresh(0)
    dest = w.create("dest")
    dest.index("2", {"v": "newer"}, version=3, version_type="external")
    op = w.op(
        "reindex",
        ["src"],
        dest=Dest("dest", version_type="external"),
        abort_on_version_conflict=False,
    )
    (worker,) = drive(op)
    assert (worker.created, worker.version_conflicts) == (1, 1)
    one = dest.get("1")
    assert one is not None and one.version == 5  # the source's version is kept
    two = dest.get("2")
    assert two is not None and two.source == {"v": "newer"}


def test_update_by_query_conflicts_on_a_document_changed_after_the_snapshot() -> None:
    # update_by_query/10_basic.yml "Response for version conflict (seq no powered)"
    w = World()
    w.index("test", {"1": {"text": "test"}})
    w.store["test"].index("1", {"text": "test2"})  # not refreshed: the scan misses it
    (worker,) = drive(w.op("update_by_query", ["test"]))
    assert (worker.updated, worker.version_conflicts, worker.batches) == (0, 1, 1)
    (failure,) = worker.failures
    assert failure["cause"]["reason"] == (
        "[1]: version conflict, required seqNo [0], primary term [1]. current document has seqNo "
        "[1] and primary term [1]"
    )


def test_update_by_query_bumps_versions() -> None:
    w = World()
    w.index("test", {"1": {}, "2": {"a": 1}})
    (worker,) = drive(w.op("update_by_query", ["test"]))
    assert (worker.total, worker.updated, worker.batches) == (2, 2, 1)
    doc = w.store["test"].get("1")
    assert doc is not None and doc.version == 2 and doc.source == {}


def test_delete_by_query_deletes_what_matches() -> None:
    w = World()
    w.index("twitter", {"1": {"user": "foobar"}, "2": {"user": "junk"}})
    query = parse_query({"match": {"user": "foobar"}})
    (worker,) = drive(w.op("delete_by_query", ["twitter"], query=query))
    assert (worker.total, worker.deleted, worker.batches) == (1, 1, 1)
    assert [d.id for d in w.store["twitter"].live()] == ["2"]


def test_an_empty_match_is_total_zero_and_no_batch() -> None:
    w = World()
    w.index("twitter", {"1": {"user": "foobar"}})
    query = parse_query({"term": {"user": "nobody"}})
    (worker,) = drive(w.op("delete_by_query", ["twitter"], query=query))
    assert counts(worker) == dict.fromkeys(counts(worker), 0)


def test_scroll_size_makes_the_batches() -> None:
    w = World()
    w.index("test", {"a": {}, "b": {}, "c": {}})
    (worker,) = drive(w.op("delete_by_query", ["test"]), size=1)
    assert (worker.deleted, worker.batches) == (3, 3)


def test_max_docs_limits_total_and_batches() -> None:
    w = World()
    w.index("twitter", {"1": {"user": "foobar"}, "2": {"user": "foobar"}})
    (worker,) = drive(w.op("update_by_query", ["twitter"], max_docs=1))
    assert (worker.total, worker.updated, worker.batches) == (1, 1, 1)


def test_slices_share_the_documents_and_max_docs_rounds_down() -> None:
    w = World()
    w.index("test", {str(i): {} for i in range(20)})
    workers = drive(w.op("update_by_query", ["test"]), slices=3)
    assert sum(x.updated for x in workers) == 20
    assert all(x.updated > 0 for x in workers)
    limited = drive(w.op("update_by_query", ["test"], max_docs=7), slices=3)
    assert [x.total for x in limited] == [2, 2, 2]


def test_writes_not_refreshed_are_not_in_the_snapshot() -> None:
    w = World()
    w.index("test", {"1": {}})
    w.index("test", {"2": {}}, refresh=False)
    (worker,) = drive(w.op("delete_by_query", ["test"]))
    assert worker.total == 1


def test_scripts_noop_and_delete() -> None:
    # update_by_query/80_scripting.yml "Update all docs with one deletion and one noop"
    w = World()
    w.index("twitter", {str(i): {"level": level} for i, level in enumerate((9, 10, 11, 12))})
    script = parse_script(
        "int choice = ctx._source.level % 3; if (choice == 0) {ctx._source.last_updated = 'x'}"
        " else if (choice == 1) {ctx.op = 'noop'} else {ctx.op = 'delete'}"
    )
    (worker,) = drive(w.op("update_by_query", ["twitter"], script=script))
    assert (worker.updated, worker.deleted, worker.noops) == (2, 1, 1)
    assert sorted(d.id for d in w.store["twitter"].live()) == ["0", "1", "3"]


def test_reindex_script_changes_ids_and_deletes() -> None:
    # reindex/85_scripting.yml "Reindex all docs with one doc deletion"
    w = World()
    w.index(
        "index1",
        {
            "1": {"lang": "en", "id": 123},
            "2": {"lang": "en", "id": 456},
            "3": {"lang": "fr", "id": 789},
        },
    )
    w.index("index2", {"fr_789": {"lang": "fr", "id": 789}, "en_123": {"lang": "en", "id": 123}})
    script = parse_script(
        "ctx._id = ctx._source.lang + '_' + ctx._source.id; "
        "if (ctx._source.lang != \"en\" ) {ctx.op = 'delete'}"
    )
    (worker,) = drive(w.op("reindex", ["index1"], dest=Dest("index2"), script=script))
    assert (worker.created, worker.updated, worker.deleted, worker.noops) == (1, 1, 1, 0)
    dest = w.store["index2"]
    en_123, en_456 = dest.get("en_123"), dest.get("en_456")
    assert en_123 is not None and en_123.version == 2
    assert en_456 is not None and en_456.version == 1
    assert dest.get("fr_789") is None


def test_a_noop_for_everything_writes_nothing_and_creates_no_index() -> None:
    # reindex/85_scripting.yml "Noop all docs"
    w = World()
    w.index("twitter", {"1": {"user": "foobar"}, "2": {"user": "foo"}})
    script = parse_script('ctx.op = "noop"')
    (worker,) = drive(w.op("reindex", ["twitter"], dest=Dest("new_twitter"), script=script))
    assert (worker.updated, worker.noops, worker.batches) == (0, 2, 1)
    assert "new_twitter" not in w.store and w.created == ["twitter"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('ctx.junk = "stuff"', "Invalid fields added to context [junk]"),
        ('ctx._id = "stuff"', "Modifying [_id] not allowed"),
        (
            'if (ctx._source.user == "foobar") {ctx.op = "index"} else {ctx.op = "junk"}',
            "Operation type [junk] not allowed, only [noop, index, delete] are allowed",
        ),
        ("ctx.op = null", "Script cleared operation type"),
    ],
)
def test_update_by_query_script_errors(source: str, message: str) -> None:
    # update_by_query/80_scripting.yml: bogus context, can't change _id, unsupported op type
    w = World()
    w.index("twitter", {"1": {"user": "foobar"}, "2": {"user": "foo"}})
    with pytest.raises(IllegalArgumentError) as info:
        drive(w.op("update_by_query", ["twitter"], script=parse_script(source)))
    assert info.value.reason == message


def test_a_broken_script_fails_when_the_first_document_comes() -> None:
    w = World()
    w.index("twitter", {"1": {"user": "foobar"}})
    w.index("empty", {})
    broken = parse_script("syntax errors are fun!")
    (worker,) = drive(w.op("update_by_query", ["empty"], script=broken))
    assert worker.total == 0  # nothing to run it on: no error, as in OpenSearch
    with pytest.raises(ScriptError, match="compile error"):
        drive(w.op("update_by_query", ["twitter"], script=broken))


def test_synthetic_documents_move_counts() -> None:
    w = World()
    w.create("big")
    w.synthetic["big"] = 2500
    w.index("big", {"real": {}})
    (worker,) = drive(w.op("reindex", ["big"], dest=Dest("copy")))
    assert (worker.total, worker.created, worker.batches) == (2501, 2501, 3)
    assert w.synthetic["copy"] == 2500 and len(w.store["copy"]) == 1
    only_real = parse_query({"ids": {"values": ["real"]}})
    (worker,) = drive(w.op("delete_by_query", ["big"], query=only_real))
    assert (worker.total, worker.deleted) == (1, 1) and w.synthetic["big"] == 2500


def test_a_delete_into_a_missing_index_is_a_failure_not_a_creation() -> None:
    w = World()
    w.index("src", {"1": {}})
    script = parse_script("ctx._index = 'nowhere'; ctx.op = 'delete'")
    (worker,) = drive(w.op("reindex", ["src"], dest=Dest("dest"), script=script))
    assert worker.deleted == 0 and "nowhere" not in w.store
    (failure,) = worker.failures
    assert (failure["index"], failure["status"]) == ("nowhere", 404)
    assert failure["cause"]["type"] == "index_not_found_exception"


def test_manual_slices_share_out_the_documents() -> None:
    w = World()
    w.index("src", {str(i): {} for i in range(30)})
    w.synthetic["src"] = 11
    seen: list[int] = []
    for slice_id in range(3):
        (worker,) = drive(w.op("update_by_query", ["src"], manual_slice=(slice_id, 3)))
        seen.append(worker.total)
    assert sum(seen) == 41 and all(n > 0 for n in seen)
