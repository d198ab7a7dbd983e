"""Atomic Parquet publication: readers never see a partial table."""

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


def test_publication_killed_half_way_is_rolled_forward(tmp_path, monkeypatch):
    # The tables are published as one set: a run killed between two renames leaves a commit
    # record, and the next run finishes the renames instead of deleting the staged rest.
    from pipeline.storage import TableStore

    store = TableStore(tmp_path)
    for name in ("a", "b", "c"):
        write_table(table(1), store.published(name))
        write_table(table(2), store.staged(name, "run1"))
    real_replace = os.replace
    calls = []

    def dying_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed between two renames")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt):
        store.publish("run1")
    monkeypatch.setattr(os, "replace", real_replace)
    rows = {n: read_table(store.published(n)).num_rows for n in ("a", "b", "c")}
    assert rows == {"a": 2, "b": 1, "c": 1}  # mixed: what a reader would see until recovery
    assert store.recover() == ["run1"]
    assert {n: read_table(store.published(n)).num_rows for n in ("a", "b", "c")} == {
        "a": 2,
        "b": 2,
        "c": 2,
    }
    assert store.discard_staging() == []  # nothing left to discard


def test_staging_without_a_commit_record_is_not_published(tmp_path):
    from pipeline.storage import TableStore

    store = TableStore(tmp_path)
    write_table(table(1), store.published("a"))
    write_table(table(2), store.staged("a", "dead"))
    assert store.recover() == []
    assert store.discard_staging() == ["dead"]
    assert read_table(store.published("a")).num_rows == 1
