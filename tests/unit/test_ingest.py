"""Ingestion: every file becomes a document, a reject with a reason, or a duplicate."""

import datetime as dt
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.ingest import (
    IngestConfig,
    RawDirError,
    decode_bytes,
    extract_metadata,
    find_near_duplicates,
    ingest_directory,
    normalize_text,
)
from tests.torture import Appender, build_torture_folder

AS_ROOT = os.geteuid() == 0


def outcomes(result):
    out = {d["source_path"]: "document" for d in result.documents}
    out.update({r["source_path"]: r["reason"] for r in result.rejected})
    out.update({d["source_path"]: "duplicate" for d in result.duplicates})
    return out


def test_torture_folder_accounts_for_every_file(tmp_path, seed_dir):
    # The core promise: nothing is lost, nothing crashes, each file has exactly one outcome.
    outside = tmp_path / "outside"
    outside.mkdir()
    expect = build_torture_folder(seed_dir, outside)
    if AS_ROOT:  # root reads mode-000 files; the OS error path is covered by the next test
        expect["bad/unreadable.txt"] = "document"
    for seed in ("000_1310cc5b051dc124.txt", "004_eb89798d04983a40.txt"):
        expect[seed] = "document"
    with Appender(seed_dir / "growing.txt"):
        result = ingest_directory(seed_dir, IngestConfig(max_bytes=5_000_000))
    got = outcomes(result)
    listed = (
        [d["source_path"] for d in result.documents]
        + [r["source_path"] for r in result.rejected]
        + [d["source_path"] for d in result.duplicates]
    )
    assert len(listed) == len(set(listed)), "a file appears twice"
    assert got.pop("growing.txt") in {"unstable", "document"}
    assert got == expect
    assert len(expect) >= 20 + 2


def test_unreadable_file_reports_os_error(tmp_path, monkeypatch):
    # Root ignores file modes, so simulate the OS refusing the read.
    (tmp_path / "a.txt").write_text("Readable.")
    (tmp_path / "b.txt").write_text("Refused.")
    real_open = open

    def fake_open(path, *args, **kwargs):
        if str(path).endswith("b.txt"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    result = ingest_directory(tmp_path)
    (reject,) = result.rejected
    assert reject["reason"] == "unreadable" and "Permission denied" in reject["detail"]
    assert [d["source_path"] for d in result.documents] == ["a.txt"]


def test_encodings_are_recorded(tmp_path):
    expect = build_torture_folder(tmp_path / "raw", _mkdir(tmp_path / "outside"))
    result = ingest_directory(tmp_path / "raw")
    enc = {d["source_path"]: d["encoding"] for d in result.documents}
    assert enc["good/utf8.txt"] == "utf-8"
    assert enc["good/utf8_bom.txt"] == "utf-8-sig"
    assert enc["good/utf16.txt"] == "utf-16-le"
    assert enc["good/cp1252.txt"] == "cp1252"
    assert enc["good/mixed.txt"] == "utf-8+cp1252"
    texts = {d["source_path"]: d["text"] for d in result.documents}
    assert "“plan” costs €5 million — said" in texts["good/cp1252.txt"]
    assert "A café in Paris.\nLe résumé du ministre." in texts["good/mixed.txt"]
    assert texts["good/crlf.txt"] == "CRLF Article\n\nLines end in CRLF here.\nAnd here too."
    assert texts["good/zero_width.txt"] == "ZeroWidth Text\n\nHidden joiners removed."
    assert expect["good/utf8.txt"] == "document"


def test_decode_refuses_rather_than_mangles():
    with pytest.raises(Exception, match="NUL"):
        decode_bytes(b"abc\x00def")
    with pytest.raises(Exception, match="gzip"):
        decode_bytes(b"\x1f\x8b\x08\x00rest")
    with pytest.raises(Exception) as err:
        decode_bytes(bytes(range(0x80, 0x100)) * 8)
    assert getattr(err.value, "reason", None) == "undecodable"
    assert decode_bytes("naïve".encode("latin-1")) == ("cp1252", "naïve")


def test_normalize_text_keeps_offsets_honest():
    raw = "Cafe\u0301\r\nline\u200b two\x00\rthree \t\n\n"
    assert normalize_text(raw) == "Café\nline two\nthree"


def test_duplicates_keep_the_first_path(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"Same story.\n")
    (tmp_path / "b.txt").write_bytes(b"Same story.\n")
    (tmp_path / "c.txt").write_bytes(b"Same story.\r\n")
    result = ingest_directory(tmp_path)
    assert [d["source_path"] for d in result.documents] == ["a.txt"]
    kinds = {d["source_path"]: (d["kind"], d["duplicate_of"]) for d in result.duplicates}
    assert kinds == {"b.txt": ("identical_bytes", "a.txt"), "c.txt": ("identical_text", "a.txt")}
    assert result.outcome_counts() == {"documents": 1, "duplicates": 2}


def test_near_duplicates_are_flagged(tmp_path):
    words = [f"w{i}" for i in range(400)]
    base = " ".join(words) + "."
    edited = " ".join(words[:200] + ["changed"] + words[201:]) + "."
    (tmp_path / "a.txt").write_text(base)
    (tmp_path / "b.txt").write_text(edited)
    (tmp_path / "c.txt").write_text(" ".join(reversed(words)) + ".")
    docs = {d["source_path"]: d for d in ingest_directory(tmp_path).documents}
    assert docs["b.txt"]["near_duplicate_of"] == docs["a.txt"]["doc_id"]
    assert docs["b.txt"]["near_duplicate_jaccard"] >= 0.9
    assert docs["a.txt"]["near_duplicate_of"] is None
    assert docs["c.txt"]["near_duplicate_of"] is None


def test_find_near_duplicates_threshold():
    text = " ".join(f"t{i}" for i in range(100))
    found = find_near_duplicates([("a", text), ("b", text + " extra")], 0.9)
    assert found["b"][0] == "a" and found["b"][1] == pytest.approx(96 / 97, abs=1e-3)
    assert find_near_duplicates([("a", text), ("b", "something else entirely here now")], 0.9) == {}


def test_near_duplicate_signatures_are_reused(monkeypatch):
    # A night reuses last night's MinHash signatures: only new texts and candidate pairs are
    # shingled, and the answer is the same as computing everything.
    import pipeline.ingest.duplicates as duplicates

    base = "the minister said the new pipeline would carry gas to china from siberia " * 5
    docs = [("a", base), ("b", base + " today"), ("c", "an unrelated text about football " * 5)]
    signatures: dict = {}
    first = find_near_duplicates(docs[:2], 0.9, signatures)
    expected = find_near_duplicates(docs, 0.9)
    assert set(signatures) == {"a", "b"} and first == expected
    calls = []
    real = duplicates.shingles
    monkeypatch.setattr(
        duplicates, "shingles", lambda text, k=5: calls.append(text) or real(text, k)
    )
    second = find_near_duplicates(docs, 0.9, signatures)
    assert second == expected
    assert calls.count(docs[2][1]) == 1 and len(calls) == 3  # c, then the pair a/b to verify


def test_changed_file_gets_a_new_doc_id(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("First version.")
    first = ingest_directory(tmp_path).documents[0]["doc_id"]
    f.write_text("Second version.")
    second = ingest_directory(tmp_path).documents[0]["doc_id"]
    assert first != second
    f.write_text("First version.")
    assert ingest_directory(tmp_path).documents[0]["doc_id"] == first  # id comes from content


def test_metadata():
    text = (
        "Kremlin Courts New Partners\n"
        "MOSCOW (Reuters) - Russia signed a gas deal on 12 March 2024, officials said.\n"
        "Pipelines Ahead\n"
        "The pipeline opens next year.\n"
        "Reporting by Jane Doe; Editing by John Roe"
    )
    meta = extract_metadata(text)
    assert meta["title"] == "Kremlin Courts New Partners"
    assert meta["headings"] == ["Pipelines Ahead"]
    assert (
        meta["source_attribution"] == "Reuters (MOSCOW)\nReporting by Jane Doe; Editing by John Roe"
    )
    assert meta["published_date"] == dt.date(2024, 3, 12)
    assert extract_metadata("No date here. Just text.")["published_date"] is None
    assert extract_metadata("Published 2023-02-30 is not a date.")["published_date"] is None


def test_document_row_fields(seed_dir):
    doc = ingest_directory(seed_dir).documents[0]
    assert doc["source_path"] == "000_1310cc5b051dc124.txt"
    assert doc["title"] is None  # the seed opens with a sentence, not a headline
    assert (
        doc["source_attribution"] == "Source: Official Russian Ministry of Foreign Affairs website."
    )
    assert doc["headings"][0] == "Strained Ties with Traditional Allies"
    assert doc["n_chars"] == len(doc["text"])
    assert len(doc["content_sha256"]) == 64
    assert Path(doc["ingested_from"]).is_absolute()
    assert doc["mtime"].tzinfo is not None


def test_order_is_deterministic(tmp_path):
    for name in ["b/z.txt", "a.txt", "b/a.txt", "c.txt"]:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f"Article {name}.")
    assert [d["source_path"] for d in ingest_directory(tmp_path).documents] == [
        "a.txt",
        "b/a.txt",
        "b/z.txt",
        "c.txt",
    ]


def test_missing_raw_dir_is_a_clear_error(tmp_path):
    with pytest.raises(RawDirError, match="does not exist"):
        ingest_directory(tmp_path / "nope")


def test_config_validation():
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        IngestConfig(max_bytes=0)
    with pytest.raises(LookupError):
        IngestConfig(legacy_encodings=("no-such-codec",))


def test_configurable_extensions(tmp_path):
    (tmp_path / "a.md").write_text("Markdown article.")
    assert ingest_directory(tmp_path, IngestConfig(extensions=(".md",))).documents


def _mkdir(p: Path) -> Path:
    p.mkdir()
    return p


def test_symlink_inside_root_is_not_double_counted(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.txt").write_text("Article.")
    os.symlink(tmp_path / "real", tmp_path / "alias")
    os.symlink(tmp_path / "real" / "a.txt", tmp_path / "link.txt")
    result = ingest_directory(tmp_path)
    assert Counter(outcomes(result).values()) == Counter({"document": 1, "duplicate": 1})
    shutil.rmtree(tmp_path / "real")


def test_near_duplicate_candidates_are_verified_a_block_at_a_time():
    # Every document a candidate (reprinted wire stories): texts are fetched a block at a time,
    # never all at once, and the answer does not depend on the block size.
    import pipeline.ingest.duplicates as ingest

    base = [f"story {k} " + " ".join(f"w{k}x{i}" for i in range(40)) for k in range(5)]
    docs = [(f"d{n:02d}", base[n % 5] + f" edition {n}") for n in range(30)]
    signatures = {d: ingest.minhash_signature(t) for d, t in docs}
    fetched: list[int] = []

    def text_of(rows):
        fetched.append(len(rows))
        return [docs[r][1] for r in rows]

    expected = ingest.near_duplicates([d for d, _ in docs], signatures, text_of, 0.9)
    # 25 reprints; equal scores keep the earliest original, the first edition of each story.
    assert len(expected) == 25
    assert {original for original, _ in expected.values()} == {f"d0{k}" for k in range(5)}
    fetched.clear()
    assert ingest.near_duplicates([d for d, _ in docs], signatures, text_of, 0.9, 4) == expected
    assert len(fetched) > 10 and max(fetched) <= 2 * 4


def test_folders_nested_a_thousand_deep_are_read(tmp_path):
    # os.walk recursed once per level: RecursionError about 1,000 levels down, so the run
    # failed. The scan, the accounting check and the sensor's fingerprint all walk iteratively.
    from pipeline.corpus import build_corpus
    from pipeline.ingest import fingerprint_directory
    from pipeline.validate import check_accounting

    raw = tmp_path / "raw"
    levels = [raw]
    raw.mkdir()
    for _ in range(1200):  # one level at a time: Path.mkdir(parents=True) recurses too
        levels.append(levels[-1] / "d")
        levels[-1].mkdir()
    story = levels[-1] / "story.txt"
    story.write_text("Oil exports rose sharply last year.\n", encoding="utf-8")
    try:
        corpus = build_corpus(raw, IngestConfig(), max_sentence_chars=1000)
        paths = corpus.tables["documents"].column("source_path").to_pylist()
        assert paths == ["d/" * 1200 + "story.txt"]
        assert check_accounting(raw, paths) == []
        assert fingerprint_directory(raw).n_files == 1
    finally:
        # Bottom up, one level at a time: pytest's own clean-up (shutil.rmtree) recurses too.
        story.unlink()
        for level in reversed(levels[1:]):
            level.rmdir()


def test_bidirectional_controls_and_marks_are_removed():
    # They make text display other than its bytes, and defeat exact-duplicate detection.
    hidden = "Oil\u200f exports \u202erose\u202c \u2066sharply\u2069.\u200e"
    assert normalize_text(hidden) == "Oil exports rose sharply."


def test_utf16_without_a_bom_is_decoded_not_called_binary():
    text = "Moscow and Beijing signed a gas supply deal.\n"
    for encoding in ("utf-16-le", "utf-16-be"):
        assert decode_bytes(text.encode(encoding)) == (encoding, text)
    with pytest.raises(Exception, match="NUL bytes"):
        decode_bytes(bytes(range(256)) * 4)


def test_an_invisible_mark_does_not_hide_a_duplicate(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("Oil exports rose sharply last year.\n", encoding="utf-8")
    (raw / "b.txt").write_text("Oil exports rose\u200f sharply last year.\n", encoding="utf-8")
    result = ingest_directory(raw, IngestConfig())
    assert len(result.documents) == 1 and len(result.duplicates) == 1


def test_signature_cache_round_trips_and_a_cache_made_otherwise_is_ignored(tmp_path):
    # The cache names the MinHash scheme that made it: signatures of another scheme (the
    # hand-written hashing before datasketch, or another datasketch scheme) would propose the
    # wrong candidates, so such a cache is recomputed, not read.
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipeline.ingest import load_signatures, minhash_signature, save_signatures

    sigs = {"a": minhash_signature("one two three four five six"), "b": minhash_signature("x")}
    path = tmp_path / "sigs.parquet"
    save_signatures(path, sigs, ["b", "a", "gone"])
    loaded = load_signatures(path)
    assert sorted(loaded) == ["a", "b"]
    assert all(np.array_equal(loaded[k], sigs[k]) for k in sigs)
    old = pq.read_table(path).replace_schema_metadata({b"docthemes.minhash": b"legacy-64"})
    pq.write_table(old, path)
    assert load_signatures(path) == {}
    pq.write_table(pa.table({"doc_id": ["a"]}), path)  # no scheme, no signature column
    assert load_signatures(path) == {}
