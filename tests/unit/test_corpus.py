"""The streaming corpus stage: doc_id order, cursors over last night's tables, checks as written."""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import pipeline.corpus as corpus
from pipeline.corpus import (
    CORPUS_TABLES,
    Batching,
    PreviousCorpus,
    build_corpus,
    state_key,
    write_corpus,
)
from pipeline.ingest import IngestConfig
from pipeline.storage import TableFile


@pytest.fixture
def raw(tmp_path, seed_dir):
    # The seeds plus variants, so there are several documents to sort, split and merge.
    for i in range(9):
        text = (seed_dir / sorted(p.name for p in seed_dir.glob("*.txt"))[i % 2]).read_text()
        (seed_dir / f"variant-{i}.txt").write_text(f"Variant {i}.\n\n" + text[: 800 + 300 * i])
    (seed_dir / "copy.txt").write_bytes((seed_dir / "variant-3.txt").read_bytes())
    (seed_dir / "notes.md").write_text("not an article")
    return seed_dir


# Every boundary at least once: several batches of documents, sorted texts and rows.
SMALL = Batching(documents=2, sorted_texts=2, rows=7)
DEFAULT = Batching()


def test_small_batches_give_the_same_tables(raw):
    whole = build_corpus(raw, IngestConfig(), max_sentence_chars=1000)
    streamed = build_corpus(raw, IngestConfig(), max_sentence_chars=1000, batching=SMALL)
    for name in CORPUS_TABLES:
        assert streamed.tables[name].equals(whole.tables[name]), name
    docs = whole.tables["documents"]
    assert docs.num_rows == 11 and whole.stats.outcomes["duplicates"] == 1
    assert docs.column("source_path").to_pylist() == sorted(docs.column("source_path").to_pylist())
    claims = whole.tables["claims"]
    order = claims.sort_by([("doc_id", "ascending"), ("position", "ascending")])
    assert claims.equals(order) and claims.num_rows > 50
    per_doc = {
        r["values"]: r["counts"] for r in pc.value_counts(claims.column("doc_id")).to_pylist()
    }
    ids, n_claims = docs.column("doc_id").to_pylist(), docs.column("n_claims").to_pylist()
    assert n_claims == [per_doc.get(d, 0) for d in ids]
    assert whole.stats.problems == {}


def _publish(tmp_path, raw, name, previous=None, batching=DEFAULT):
    out = tmp_path / name
    out.mkdir()
    paths = {n: out / f"{n}.parquet" for n in CORPUS_TABLES}
    stats = write_corpus(
        raw, IngestConfig(), paths, max_sentence_chars=1000, previous=previous, batching=batching
    )
    return out, paths, stats


def _previous(paths, batch_size=512):
    key = state_key(IngestConfig(), 1000)
    files = {n: TableFile(p) for n, p in paths.items()}
    return PreviousCorpus.from_files(files, key, batch_size)


def test_a_night_reuses_rows_through_cursors_and_matches_a_full_rebuild(tmp_path, raw):
    _, paths, _ = _publish(tmp_path, raw, "night1", batching=SMALL)
    for i in (20, 21):
        (raw / f"new-{i}.txt").write_text(f"New article {i}. It says something new today.\n")
    (raw / "variant-0.txt").unlink()
    _, night, stats = _publish(tmp_path, raw, "night2", _previous(paths, 2), SMALL)
    _, full, _ = _publish(tmp_path, raw, "full", batching=SMALL)
    assert (stats.n_read, stats.docs_split) == (2, 2)
    assert stats.docs_reused == 10 and stats.problems == {}
    for name in CORPUS_TABLES:
        a, b = pq.read_table(night[name]), pq.read_table(full[name])
        if name == "documents":  # read again or reused: only the listing time differs
            a, b = a.replace_schema_metadata(None), b.replace_schema_metadata(None)
        assert a.equals(b), name


def test_rows_reused_from_a_corrupt_table_fail_the_offset_check(tmp_path, raw):
    _, paths, _ = _publish(tmp_path, raw, "night1")
    claims = pq.read_table(paths["claims"])
    texts = claims.column("text").to_pylist()
    texts[5] = texts[5] + " (edited)"
    pq.write_table(
        claims.set_column(claims.schema.get_field_index("text"), "text", pa.array(texts)),
        paths["claims"],
    )
    _, _, stats = _publish(tmp_path, raw, "night2", _previous(paths))
    assert list(stats.problems) == ["claims"]
    assert "1 claims do not match their document's text" in stats.problems["claims"][0]


def test_previous_documents_are_fetched_in_any_order(tmp_path, raw):
    _, paths, _ = _publish(tmp_path, raw, "night1", batching=SMALL)
    rows = _previous(paths, 2).files.documents
    names = sorted(rows)
    for path in [names[-1], names[0], names[5], names[4]]:  # backwards too: the cursor restarts
        assert rows[path]["source_path"] == path and rows[path]["text"]


def test_no_documents_gives_empty_typed_tables(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    built = build_corpus(raw, IngestConfig(), max_sentence_chars=1000)
    assert all(built.tables[n].num_rows == 0 for n in CORPUS_TABLES)
    assert not list(tmp_path.glob("**/.tmp-*"))


def test_work_files_are_removed_even_when_the_run_fails(tmp_path, raw, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(corpus, "extract_claims", boom)
    with pytest.raises(RuntimeError, match="killed"):
        write_corpus(
            raw,
            IngestConfig(),
            {n: out / f"{n}.parquet" for n in CORPUS_TABLES},
            max_sentence_chars=1000,
        )
    assert list(out.iterdir()) == []  # no table, no work file


def test_previous_rows_out_of_doc_id_order_are_refused(tmp_path, raw):
    _, paths, _ = _publish(tmp_path, raw, "night1")
    claims = pq.read_table(paths["claims"])
    pq.write_table(claims.take(list(range(claims.num_rows))[::-1]), paths["claims"])
    with pytest.raises(ValueError, match="not sorted by doc_id; rerun with"):
        _publish(tmp_path, raw, "night2", _previous(paths))


def test_reading_and_splitting_in_worker_processes_gives_the_same_tables(tmp_path, raw):
    # What the cluster profile does, with a standard executor: new files are read and new
    # documents split in other processes (pickled in, Arrow back), reused ones copied here.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from pipeline.parallel import Workers

    (raw / "binary.txt").write_bytes(b"\x00\x01 not text")  # rejected by the worker's read
    _, paths, _ = _publish(tmp_path, raw, "night1")
    (raw / "new-1.txt").write_text("New article. Russia and China signed a gas deal today.\n")
    (raw / "variant-1.txt").unlink()
    here = build_corpus(raw, IngestConfig(), max_sentence_chars=1000, previous=_previous(paths))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        workers = Workers(pool, in_flight=2)
        small = Batching(split_documents=2, read_files=3, rows=7)
        there = build_corpus(
            raw,
            IngestConfig(),
            max_sentence_chars=1000,
            previous=_previous(paths),
            batching=small,
            workers=workers,
        )
        first_night = build_corpus(
            raw, IngestConfig(), max_sentence_chars=1000, batching=small, workers=workers
        )
        # A raw dir only the driver has (an s3:// mirror): read here, split on the workers.
        split_there = build_corpus(
            raw,
            IngestConfig(),
            max_sentence_chars=1000,
            batching=small,
            workers=workers,
            read_on=Workers(),
        )
    assert (there.stats.docs_split, there.stats.docs_reused) == (1, 10)
    assert (there.stats.n_read, here.stats.n_read) == (1, 1)
    assert first_night.stats.n_read == 12 and first_night.stats.outcomes["rejected_binary"] == 1
    read_here = build_corpus(raw, IngestConfig(), max_sentence_chars=1000)
    assert first_night.stats == read_here.stats
    for got, want in ((there, here), (first_night, read_here), (split_there, read_here)):
        for name in CORPUS_TABLES:
            a, b = got.tables[name], want.tables[name]
            if name == "documents":
                a, b = a.replace_schema_metadata(None), b.replace_schema_metadata(None)
            assert a.equals(b), name
