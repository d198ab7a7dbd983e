"""Article metadata: sidecars and the metadata table, their errors, and what wins."""

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ingest import ingest_directory
from pipeline.metadata import ArticleMetadata, MetadataError, read_sidecar

ARTICLE = "Gas Deal Signed\nMOSCOW - Russia signed a gas deal on 12 March 2024, officials said.\n"


def write(folder, name, text=ARTICLE, meta=None):
    (folder / name).write_text(text, encoding="utf-8")
    if meta is not None:
        sidecar = (folder / name).with_suffix(".json")
        sidecar.write_text(meta if isinstance(meta, str) else json.dumps(meta), encoding="utf-8")


def test_a_sidecar_fills_the_document_and_is_not_an_article(tmp_path):
    write(
        tmp_path,
        "a.txt",
        meta={
            "source": "  Reuters ",
            "published_date": "2024-03-13T08:00:00Z",
            "url": "https://example.org/a",
            "title": "Russia and China sign",
            "authors": "Jane Doe; John Roe",
            "section": "world",  # other keys of a CMS export are ignored
        },
    )
    result = ingest_directory(tmp_path)
    assert [d["source_path"] for d in result.documents] == ["a.txt"]
    assert not result.rejected and not result.duplicates
    doc = result.documents[0]
    assert doc["source"] == "Reuters"
    assert doc["published_date"] == dt.date(2024, 3, 13)  # the sidecar wins over the text
    assert doc["url"] == "https://example.org/a"
    assert doc["title"] == "Russia and China sign"
    assert doc["authors"] == ["Jane Doe", "John Roe"]
    assert doc["metadata_from"] == "a.json" and len(doc["metadata_sha256"]) == 64


def test_without_metadata_the_text_decides(tmp_path):
    write(tmp_path, "a.txt")
    doc = ingest_directory(tmp_path).documents[0]
    assert doc["source"] is None and doc["url"] is None and doc["authors"] == []
    assert doc["published_date"] == dt.date(2024, 3, 12)
    assert doc["title"] == "Gas Deal Signed"
    assert doc["metadata_from"] is None and doc["metadata_sha256"] is None


def test_a_bad_sidecar_is_a_reject_and_the_article_is_still_read(tmp_path):
    write(tmp_path, "a.txt", meta="{not json")
    write(tmp_path, "b.txt", text="Another article entirely.\n", meta={"published_date": "13/03"})
    write(tmp_path, "c.txt", text="A third article here.\n", meta=["a", "list"])
    result = ingest_directory(tmp_path)
    assert sorted(d["source_path"] for d in result.documents) == ["a.txt", "b.txt", "c.txt"]
    rejects = {r["source_path"]: r for r in result.rejected}
    assert set(rejects) == {"a.json", "b.json", "c.json"}
    assert {r["reason"] for r in rejects.values()} == {"bad_metadata"}
    assert "cannot read the sidecar" in rejects["a.json"]["detail"]
    assert "not an ISO date" in rejects["b.json"]["detail"]
    assert "expected a JSON object" in rejects["c.json"]["detail"]
    assert all(d["metadata_from"] is None for d in result.documents)


def test_the_metadata_table_and_the_sidecar_first(tmp_path):
    write(tmp_path, "a.txt")
    write(tmp_path, "b.txt", text="Another article entirely.\n", meta={"source": "AP"})
    (tmp_path / "metadata.csv").write_text(
        "source_path,source,published_date,authors\n"
        "a.txt,TASS,2024-03-14,\n"
        "b.txt,Xinhua,2024-03-15,\n"
        "b.txt,Twice,2024-03-16,\n"
        ",Nobody,2024-03-17,\n"
        "gone.txt,Elsewhere,2024-03-18,\n",
        encoding="utf-8",
    )
    result = ingest_directory(tmp_path)
    docs = {d["source_path"]: d for d in result.documents}
    assert set(docs) == {"a.txt", "b.txt"}  # the table is not an article
    assert docs["a.txt"]["source"] == "TASS" and docs["a.txt"]["metadata_from"] == "metadata.csv"
    assert docs["a.txt"]["published_date"] == dt.date(2024, 3, 14)
    assert docs["b.txt"]["source"] == "AP"  # its sidecar wins over its row
    [reject] = result.rejected
    assert reject["source_path"] == "metadata.csv" and reject["reason"] == "bad_metadata"
    assert "2 rows not used" in reject["detail"] and "listed twice" in reject["detail"]


def test_a_parquet_table_without_its_key_is_one_reject(tmp_path):
    write(tmp_path, "a.txt")
    pq.write_table(pa.table({"path": ["a.txt"], "source": ["AP"]}), tmp_path / "metadata.parquet")
    result = ingest_directory(tmp_path)
    assert [d["source"] for d in result.documents] == [None]
    [reject] = result.rejected
    assert reject["reason"] == "bad_metadata" and "no 'source_path' column" in reject["detail"]


def test_sidecar_limits_and_hash(tmp_path):
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"title": "x" * 1_100_000}), encoding="utf-8")
    with pytest.raises(MetadataError, match="limit"):
        read_sidecar(big)
    a = ArticleMetadata(source="AP", authors=("A",))
    assert a.sha256() == ArticleMetadata(source=" AP ", authors="A").sha256()
    assert a.sha256() != ArticleMetadata(source="AFP", authors=("A",)).sha256()
