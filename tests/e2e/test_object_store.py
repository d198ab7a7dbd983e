"""Raw and output on S3 for real: `docthemes run` against moto's S3 server on loopback.

The runs are the commands an operator runs, pointed at the store by the standard variables
(AWS_ENDPOINT_URL and credentials), each with its own local working copy. The published
tables are read back through the pointer object by a reader with a fresh copy.
"""

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from pipeline.faults import FAULT_ENV
from pipeline.locations import filesystem
from pipeline.objectstore.tables import open_store, published_url
from tests.e2e.conftest import LOCAL_YAML
from tests.helpers import TABLES, assert_tables_equal, cli_process
from tests.servers import s3_server

pytestmark = pytest.mark.slow

RAW, OUT = "s3://news/raw", "s3://news/processed"


@pytest.fixture
def s3(monkeypatch, tmp_path) -> Iterator[dict[str, str]]:
    with s3_server() as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("DOCTHEMES_WORK_DIR", str(tmp_path / "reader-work"))
        filesystem(RAW)[0].mkdir("news")
        yield env


def s3_run(tmp_path: Path, env: dict[str, str], name: str, **extra: str):
    home = tmp_path / f"{name}-home"
    home.mkdir()
    shutil.copy(LOCAL_YAML, home / "dagster.yaml")
    run_env = {**env, "DOCTHEMES_WORK_DIR": str(tmp_path / "run-work"), **extra}
    return cli_process(RAW, OUT, home, run_env)


def published() -> dict[str, pd.DataFrame]:
    """The published set, as a reader on another machine gets it (a fresh local copy)."""
    store = open_store(OUT)
    with store.lock(local_only=True):
        store.sync()
    return {name: pd.read_parquet(store.published(name)) for name in TABLES}


def pointer() -> str:
    fs, root = filesystem(OUT)
    return fs.cat_file(f"{root}/_current").decode().strip()


def test_raw_and_output_on_s3_give_the_local_profiles_tables(s3, seeds, local_run, tmp_path):
    fs, _ = filesystem(RAW)
    for f in sorted(seeds.glob("*.txt")):
        fs.put_file(str(f), f"news/raw/{f.name}")

    proc = s3_run(tmp_path, s3, "first")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    assert f"published to {OUT} (snapshot " in proc.stdout.read()
    got = published()
    reference = got["documents"]
    want = {name: pd.read_parquet(local_run / f"{name}.parquet") for name in TABLES}
    # Where and when each file was written: its object's URL and LastModified.
    documents = got["documents"]
    assert list(documents.ingested_from) == [f"{RAW}/{p}" for p in documents.source_path]
    modified = [fs.info(f"news/raw/{p}")["LastModified"] for p in documents.source_path]
    assert [t.timestamp() for t in documents.mtime] == [t.timestamp() for t in modified]
    got["documents"] = documents.drop(columns=["ingested_from", "mtime"])
    want["documents"] = want["documents"].drop(columns=["ingested_from", "mtime"])
    for name in TABLES:
        if name != "runs":  # run ids and times differ by nature
            assert_tables_equal(got[name], want[name], name)
    # A reader with pandas (fsspec) straight from the store, through the pointer.
    direct = pd.read_parquet(published_url(OUT, "claims"))
    assert_tables_equal(direct, want["claims"], "claims")
    # Nothing of the run's work is left as an object: snapshots, the pointer, the report.
    keys = {p.split("/", 2)[2] for p in fs.find("news/processed")}
    assert {"_current", "report.html"} <= keys
    assert all(k.startswith("_snapshots/") for k in keys - {"_current", "report.html"})
    first = pointer()

    # A second night with a new article is killed after uploading, before the switch: the
    # store still publishes the first night's set, and its lease is left to expire.
    fs.pipe_file("news/raw/new.txt", b"Russia and India held joint naval drills in the Bay.\n")
    ttl = {"DOCTHEMES_LEASE_TTL_S": "5"}
    proc = s3_run(tmp_path, s3, "killed", **{FAULT_ENV: "remote-uploaded"}, **ttl)
    assert proc.wait(timeout=300) == -signal.SIGKILL
    assert pointer() == first
    assert_tables_equal(published()["claims"], got["claims"], "claims")

    # The next run takes the expired lease over, and publishes the new article.
    proc = s3_run(tmp_path, s3, "third", **ttl)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-3000:]
    assert pointer() != first
    documents = published()["documents"]
    assert sorted(documents.source_path) == sorted([*reference.source_path, "new.txt"])
    assert not fs.exists("news/processed/.docthemes.lock")


def test_a_missing_bucket_fails_the_run_with_its_name(s3, tmp_path):
    proc = s3_run(tmp_path, s3, "raw", DOCTHEMES_RAW_DIR="s3://missing/raw")
    assert proc.wait(timeout=300) == 1
    assert "bucket 'missing' does not exist" in proc.stderr.read()
    proc = s3_run(tmp_path, s3, "out", DOCTHEMES_PROCESSED_DIR="s3://gone/processed")
    assert proc.wait(timeout=300) == 1
    assert "cannot take the lock s3://gone/processed/.docthemes.lock" in proc.stderr.read()
