"""Atomic Parquet files and snapshot publication: readers never see a partial table or set."""

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.schemas import SCHEMAS, to_table
from pipeline.storage import (
    MissingTableError,
    ParquetSink,
    read_table,
    remove_stale_temporaries,
    write_table,
)


def table(n):
    return pa.table({"x": pa.array(range(n), pa.int64())})


def test_write_and_read(tmp_path):
    path = write_table(table(3), tmp_path / "t.parquet")
    assert read_table(path).column("x").to_pylist() == [0, 1, 2]
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(tmp_path) == ["t.parquet"]


def test_failure_mid_write_keeps_previous_table(tmp_path):
    path = write_table(table(2), tmp_path / "t.parquet")
    with pytest.raises(RuntimeError), ParquetSink(path, table(0).schema) as sink:
        sink.write(table(5))
        raise RuntimeError("killed mid-write")
    assert read_table(path).num_rows == 2
    assert os.listdir(tmp_path) == ["t.parquet"]


def test_stale_temporaries_are_cleaned(tmp_path):
    # Files of killed writes and work dirs of killed model exports alike.
    (tmp_path / ".tmp-t.parquet.abc").write_bytes(b"partial")
    (tmp_path / "_cache" / ".tmp-export-x").mkdir(parents=True)
    (tmp_path / "_cache" / ".tmp-export-x" / "model.onnx").write_bytes(b"partial")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == [".tmp-export-x", ".tmp-t.parquet.abc"]
    assert os.listdir(tmp_path / "_cache") == [] and not (tmp_path / ".tmp-t.parquet.abc").exists()


def test_missing_table_raises(tmp_path):
    with pytest.raises(MissingTableError, match="materialize"):
        read_table(tmp_path / "nothing.parquet")


def test_streaming_writes_row_groups(tmp_path):
    with ParquetSink(tmp_path / "s.parquet", table(0).schema) as sink:
        for _ in range(3):
            sink.write(table(10))
    meta = pq.ParquetFile(tmp_path / "s.parquet").metadata
    assert meta.num_rows == 30 and meta.num_row_groups == 3


def test_empty_tables_keep_their_schema(tmp_path):
    path = write_table(to_table([], SCHEMAS["claims"]), tmp_path / "claims.parquet")
    assert read_table(path).schema.equals(SCHEMAS["claims"])


def _publish(store, sizes, run_id):
    for name, n in sizes.items():
        write_table(table(n), store.staged(name, run_id))
    return store.publish(run_id)


def _rows(store, names=("a", "b", "c")):
    return {n: read_table(store.published(n)).num_rows for n in names}


def test_publication_killed_before_the_switch_shows_the_old_set_then_rolls_forward(
    tmp_path, monkeypatch
):
    # The tables are published as one set by one switch: a run killed after its snapshot is
    # complete but before the switch leaves readers on last night's whole set; the next run
    # switches to the complete snapshot instead of deleting it.
    from pipeline import snapshots
    from pipeline.snapshots import TableStore

    store = TableStore(tmp_path)
    _publish(store, {"a": 1, "b": 1, "c": 1}, "run0")

    def killed(point):
        if point == "snapshot-renamed":
            raise KeyboardInterrupt("killed before the switch")

    monkeypatch.setattr(snapshots, "fault_point", killed)
    with pytest.raises(KeyboardInterrupt):
        _publish(store, {"a": 2, "b": 2, "c": 2}, "run1")
    monkeypatch.undo()
    assert _rows(store) == {"a": 1, "b": 1, "c": 1}  # never a mix
    assert len(store.recover()) == 1
    assert _rows(store) == {"a": 2, "b": 2, "c": 2}
    assert store.discard_staging() == []  # nothing left to discard
    for name in "abc":  # the analysts' paths resolve through the one switched link
        assert store.published(name).is_symlink()
        assert store.published(name).resolve().parent == store.current_snapshot()


def test_a_kill_between_the_switch_and_a_new_table_link_is_repaired(tmp_path, monkeypatch):
    from pipeline import snapshots
    from pipeline.snapshots import TableStore

    store = TableStore(tmp_path)
    _publish(store, {"a": 1}, "run0")

    def killed(point):
        if point == "switched":
            raise KeyboardInterrupt("killed after the switch")

    monkeypatch.setattr(snapshots, "fault_point", killed)
    with pytest.raises(KeyboardInterrupt):
        _publish(store, {"a": 2, "d": 5}, "run1")
    monkeypatch.undo()
    assert _rows(store, ["a"]) == {"a": 2} and not store.published("d").exists()
    store.recover()
    assert _rows(store, ["a", "d"]) == {"a": 2, "d": 5}


def test_tables_a_run_did_not_write_are_carried_into_its_snapshot(tmp_path):
    from pipeline.snapshots import TableStore

    store = TableStore(tmp_path)
    _publish(store, {"a": 1, "b": 1}, "run0")
    assert _publish(store, {"b": 3}, "run1") == ["b"]
    assert _rows(store, ["a", "b"]) == {"a": 1, "b": 3}
    assert sorted(p.name for p in store.current_snapshot().glob("*.parquet")) == [
        "a.parquet",
        "b.parquet",
    ]


def test_plain_tables_of_an_older_version_become_links_on_the_first_publication(tmp_path):
    from pipeline.snapshots import TableStore

    store = TableStore(tmp_path)
    write_table(table(1), store.published("a"))
    write_table(table(1), store.published("b"))
    _publish(store, {"a": 2}, "run1")
    assert _rows(store, ["a", "b"]) == {"a": 2, "b": 1}
    assert store.published("a").is_symlink() and store.published("b").is_symlink()


def test_rollback_keeps_n_snapshots_and_is_not_undone_by_recovery(tmp_path):
    from pipeline.snapshots import TableStore

    store = TableStore(tmp_path)
    for n in range(1, 6):
        _publish(store, {"a": n}, f"run{n}")
    store.prune(3)
    assert len(store.snapshots()) == 3  # the default keep is 3, and prune(3) is a no-op
    left, now = store.rollback()
    assert left.endswith("run5") and now.endswith("run4")
    assert _rows(store, ["a"]) == {"a": 4}
    assert store.recover() == [] and _rows(store, ["a"]) == {"a": 4}
    store.rollback()
    assert _rows(store, ["a"]) == {"a": 3}
    with pytest.raises(ValueError, match="no earlier snapshot"):
        store.rollback()
    _publish(store, {"a": 6}, "run6")  # the next night publishes a new snapshot
    assert _rows(store, ["a"]) == {"a": 6}
    # The abandoned run4 and run5 are deleted; run3 stays, with run6 and one slot to spare.
    assert [p.name.split("-")[-1] for p in store.snapshots()] == ["run3", "run6"]
    assert store.rollback()[1].endswith("run3")


def test_a_reader_holding_an_old_table_keeps_reading_it_after_pruning(tmp_path):
    from pipeline.snapshots import TableStore

    store = TableStore(tmp_path)
    _publish(store, {"a": 1}, "run1")
    reader = pq.ParquetFile(store.published("a"))
    for n in range(2, 6):
        _publish(store, {"a": n}, f"run{n}")
    assert reader.read().num_rows == 1 and _rows(store, ["a"]) == {"a": 5}


def test_a_re_execution_inherits_its_parents_staging(tmp_path):
    from pipeline.snapshots import TableStore

    store = TableStore(tmp_path)
    write_table(table(7), store.staged("a", "parent"))
    assert store.inherit_staging("parent", "child") == ["a"]
    assert read_table(store.current("a", "child")).num_rows == 7
    assert store.inherit_staging("gone", "child") is None


def test_staging_without_a_commit_record_is_not_published(tmp_path):
    from pipeline.snapshots import TableStore

    store = TableStore(tmp_path)
    write_table(table(1), store.published("a"))
    write_table(table(2), store.staged("a", "dead"))
    assert store.recover() == []
    assert store.discard_staging() == ["dead"]
    assert read_table(store.published("a")).num_rows == 1
