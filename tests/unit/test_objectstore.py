"""Raw and output locations on S3, against moto's S3 server on a loopback port.

The mirror of a raw prefix, the lease that is the run lock, and snapshot publication through
the pointer object: each guarantee of a local output dir, held on an object store.
"""

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.locations import LocationError, filesystem, normalise, work_dir
from pipeline.objectstore.lease import LOCK_OBJECT, Lease, LeaseHeldError, LeaseLostError
from pipeline.objectstore.mirror import STATE_FILE, fingerprint_objects, mirror_objects
from pipeline.objectstore.tables import (
    PublicationConflictError,
    RemoteTables,
    open_store,
    published_url,
)
from pipeline.snapshots import ROLLED_BACK, RunLockedError, TableStore
from pipeline.storage import read_table, write_table
from tests.servers import s3_server


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    with s3_server() as env:
        yield env


@pytest.fixture
def bucket(s3_env, monkeypatch, tmp_path, request) -> str:
    """A new bucket per test, with the process pointed at the server and a fresh work dir."""
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DOCTHEMES_WORK_DIR", str(tmp_path / "work"))
    name = request.node.name.replace("_", "-")[:50].strip("-").lower()
    fs, _ = filesystem(f"s3://{name}")
    fs.mkdir(name)
    return name


def put(bucket: str, key: str, data: bytes) -> None:
    fs, _ = filesystem(f"s3://{bucket}")
    fs.pipe_file(f"{bucket}/{key}", data)


def files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != STATE_FILE
    }


def test_locations_are_normalised_and_other_stores_refused():
    assert normalise("data/raw") == "data/raw"
    assert normalise("file:///srv/news/raw") == "/srv/news/raw"
    assert normalise("s3://news/raw/") == "s3://news/raw"
    with pytest.raises(LocationError, match="gs:// is not supported"):
        normalise("gs://news/raw")
    with pytest.raises(LocationError, match="names no bucket"):
        normalise("s3:///raw")


def test_the_mirror_downloads_only_what_changed_and_removes_what_vanished(bucket, tmp_path):
    url, local = f"s3://{bucket}/raw", tmp_path / "mirror"
    put(bucket, "raw/a.txt", b"first article")
    put(bucket, "raw/2026/b.txt", b"second article")
    put(bucket, "raw/.hidden/c.txt", b"skipped, as a local walk skips it")
    put(bucket, "elsewhere/d.txt", b"outside the prefix")

    report = mirror_objects(url, local)
    assert (report.downloaded, report.removed, report.unchanged) == (2, 0, 0)
    assert files(local) == {"2026/b.txt": b"second article", "a.txt": b"first article"}
    # The local mtime is the object's: the corpus step reuses rows by size and mtime.
    fs, _ = filesystem(url)
    modified = fs.info(f"{bucket}/raw/a.txt")["LastModified"]
    assert (local / "a.txt").stat().st_mtime == modified.timestamp()

    assert mirror_objects(url, local).downloaded == 0
    put(bucket, "raw/a.txt", b"first article, corrected")
    fs.rm(f"{bucket}/raw/2026/b.txt")
    report = mirror_objects(url, local)
    assert (report.downloaded, report.removed, report.unchanged) == (1, 1, 0)
    assert files(local) == {"a.txt": b"first article, corrected"}
    assert not (local / "2026").exists()


def test_keys_that_cannot_be_files_are_rejected_with_the_reason(bucket, tmp_path):
    url = f"s3://{bucket}/raw"
    put(bucket, "raw/x", b"an object and a folder at once")
    put(bucket, "raw/x/y.txt", b"kept")
    put(bucket, "raw/a//b.txt", b"an empty part")
    put(bucket, "raw/" + "n" * 300 + ".txt", b"a part too long")
    report = mirror_objects(url, tmp_path / "mirror")
    assert files(tmp_path / "mirror") == {"x/y.txt": b"kept"}
    reasons = {r["source_path"]: (r["reason"], r["detail"]) for r in report.rejected}
    assert set(reasons) == {"x", "a//b.txt", "n" * 300 + ".txt"}
    assert {reason for reason, _ in reasons.values()} == {"bad_filename"}
    assert "other objects use it as a folder" in reasons["x"][1]


def test_a_missing_bucket_is_an_error_not_an_empty_raw_dir(bucket, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mirror_objects("s3://no-such-bucket/raw", tmp_path / "mirror")


def test_the_fingerprint_follows_the_listing_including_a_return_to_an_earlier_state(bucket):
    url = f"s3://{bucket}/raw"
    put(bucket, "raw/a.txt", b"one")
    first = fingerprint_objects(url)
    put(bucket, "raw/b.txt", b"two")
    second = fingerprint_objects(url)
    filesystem(url)[0].rm(f"{bucket}/raw/b.txt")
    assert (first.n_files, second.n_files) == (1, 2)
    assert first.digest != second.digest
    assert fingerprint_objects(url) == first


def test_the_lease_admits_one_holder_and_an_expired_one_is_taken_over(bucket):
    url = f"s3://{bucket}/out"
    first = Lease(url, ttl_s=60)
    first.acquire()
    first.check()
    with pytest.raises(LeaseHeldError, match="holds the lock"):
        Lease(url, ttl_s=60).acquire(timeout_s=0)
    first.release()
    fs, _ = filesystem(url)
    assert not fs.exists(f"{bucket}/out/{LOCK_OBJECT}")

    # A holder that died: its lease has expired, and the next run takes it over.
    dead = {"owner": "dead", "host": "gone", "pid": 1, "renewed_at": 0, "expires_at": 1.0}
    fs.pipe_file(f"{bucket}/out/{LOCK_OBJECT}", json.dumps(dead).encode())
    taker = Lease(url, ttl_s=60)
    taker.acquire(timeout_s=0)
    taker.check()
    # Someone else now holds it (it was taken over): this process must not publish.
    fs.pipe_file(f"{bucket}/out/{LOCK_OBJECT}", json.dumps({**dead, "owner": "other"}).encode())
    with pytest.raises(LeaseLostError):
        taker.check()
    taker.release()  # not ours any more: left in place
    assert fs.exists(f"{bucket}/out/{LOCK_OBJECT}")


def test_the_lease_is_renewed_while_held(bucket):
    url = f"s3://{bucket}/out"
    lease = Lease(url, ttl_s=1.5)
    lease.acquire()
    try:
        time.sleep(2.5)  # longer than the lease: renewals keep it
        lease.check()
    finally:
        lease.release()


def _stage(store: TableStore, run_id: str, sizes: dict[str, int]) -> None:
    for name, n in sizes.items():
        write_table(pa.table({"x": pa.array(range(n), pa.int64())}), store.staged(name, run_id))


def _remote_rows(url: str, name: str) -> int:
    fs, _ = filesystem(url)
    with fs.open(published_url(url, name)) as fh:
        return int(pq.read_metadata(fh).num_rows)


def test_a_snapshot_is_published_by_the_pointer_and_read_back_elsewhere(bucket, tmp_path):
    url = f"s3://{bucket}/out"
    store = open_store(url)
    assert store.base_dir == work_dir(url) and store.remote is not None
    with store.lock():
        store.sync()
        _stage(store, "r1", {"a": 1, "b": 2})
        store.publish("r1")
        _stage(store, "r2", {"a": 3})
        store.publish("r2")
    assert (_remote_rows(url, "a"), _remote_rows(url, "b")) == (3, 2)
    fs, _ = filesystem(url)
    name = store.current_snapshot().name
    assert fs.cat_file(f"{bucket}/out/_current").decode().strip() == name
    # b was not written by r2: copied within the store into its snapshot, not uploaded.
    assert fs.exists(f"{bucket}/out/_snapshots/{name}/b.parquet")

    # Another machine (another work dir) gets the published set at its next run.
    os.environ["DOCTHEMES_WORK_DIR"] = str(tmp_path / "other-machine")
    other = open_store(url)
    with other.lock():
        assert "switched the local copy" in (other.sync() or "")
    assert read_table(other.published("a")).num_rows == 3
    assert read_table(other.published("b")).num_rows == 2


def test_a_publication_that_fails_before_the_switch_leaves_the_previous_set(bucket, monkeypatch):
    url = f"s3://{bucket}/out"
    store = open_store(url)
    with store.lock():
        _stage(store, "r1", {"a": 1})
        store.publish("r1")
        before = store.current_snapshot().name

        def cut_off(self, name, etag):
            raise OSError("connection reset")

        _stage(store, "r2", {"a": 5})
        with monkeypatch.context() as patched, pytest.raises(OSError, match="connection reset"):
            patched.setattr(RemoteTables, "_switch", cut_off)
            store.publish("r2")
        # Readers of the store and of the local copy still see r1's set.
        assert _remote_rows(url, "a") == 1
        assert store.current_snapshot().name == before
        assert read_table(store.published("a")).num_rows == 1
        # The next run's recovery does not roll the unpublished snapshot forward.
        store.recover()
        store.sync()
        assert store.current_snapshot().name == before
        unpublished = [s for s in store.snapshots() if s.name > before]
        assert unpublished and all((s / ROLLED_BACK).exists() for s in unpublished)


def test_a_run_cannot_publish_over_another_machines_publication(bucket, tmp_path):
    url = f"s3://{bucket}/out"
    mine = open_store(url)
    with mine.lock():
        _stage(mine, "r1", {"a": 1})
        mine.publish("r1")
    # Another machine publishes meanwhile (its lease, then released).
    os.environ["DOCTHEMES_WORK_DIR"] = str(tmp_path / "other-machine")
    theirs = open_store(url)
    with theirs.lock():
        theirs.sync()
        _stage(theirs, "r2", {"a": 2})
        theirs.publish("r2")
    # This copy did not sync: its publication would overwrite theirs, and is refused.
    with mine.lock():
        _stage(mine, "r3", {"a": 3})
        with pytest.raises(PublicationConflictError, match="another run published"):
            mine.publish("r3")
    assert _remote_rows(url, "a") == 2


def test_the_lock_of_a_remote_store_is_its_lease(bucket):
    url = f"s3://{bucket}/out"
    holder = Lease(url, ttl_s=60)
    holder.acquire()
    try:
        with pytest.raises(RunLockedError, match="holds the lock"), open_store(url).lock(0):
            pass
    finally:
        holder.release()


def test_rollback_switches_the_pointer_and_pruning_keeps_n(bucket):
    url = f"s3://{bucket}/out"
    store = open_store(url)
    with store.lock():
        for i, n in enumerate((1, 2, 3, 4), 1):
            _stage(store, f"r{i}", {"a": n})
            store.publish(f"r{i}", keep=2)
        remote = store.remote
        complete, _ = remote.snapshot_names()
        assert len(complete) == 2  # the published one and the one before
        left, now = store.rollback()
    assert (left, now) == tuple(complete[::-1])
    assert _remote_rows(url, "a") == 3
    assert read_table(store.published("a")).num_rows == 3
    with store.lock(), pytest.raises(ValueError, match="no earlier snapshot"):
        store.rollback()


def test_the_sensor_watches_an_s3_raw_dir_by_its_listing(bucket):
    import dagster as dg

    from assets.automation import raw_dir_sensor
    from assets.resources import PipelineSettings

    settings = PipelineSettings(raw_dir=f"s3://{bucket}/raw", processed_dir="data/processed")
    put(bucket, "raw/a.txt", b"one")

    def evaluate(cursor=None):
        context = dg.build_sensor_context(cursor=cursor, resources={"settings": settings})
        return raw_dir_sensor(context)

    first = evaluate()
    assert len(first.run_requests) == 1
    assert "no new or changed files among 1" in evaluate(first.cursor).skip_reason.skip_message
    put(bucket, "raw/b.txt", b"two")
    (request,) = evaluate(first.cursor).run_requests
    assert request.tags["docthemes/raw_files"] == "2"
    missing = PipelineSettings(raw_dir="s3://no-such-bucket/raw", processed_dir="data/processed")
    result = raw_dir_sensor(dg.build_sensor_context(resources={"settings": missing}))
    assert "does not exist" in result.skip_reason.skip_message


def test_a_mirrored_raw_dir_reads_as_its_objects_with_their_urls_and_rejects(bucket, tmp_path):
    from pipeline.corpus import CORPUS_TABLES, write_corpus
    from pipeline.ingest import IngestConfig

    url = f"s3://{bucket}/raw"
    put(bucket, "raw/a.txt", b"Russia and China signed a gas deal on Monday, officials said.\n")
    put(bucket, "raw/a//b.txt", b"A key with an empty part.\n")
    report = mirror_objects(url, tmp_path / "mirror")
    paths = {n: tmp_path / "out" / f"{n}.parquet" for n in CORPUS_TABLES}
    paths["documents"].parent.mkdir()
    write_corpus(
        tmp_path / "mirror",
        IngestConfig(),
        paths,
        max_sentence_chars=1000,
        rejected=report.rejected,
        raw_location=url,
    )
    documents = read_table(paths["documents"]).to_pylist()
    assert [(d["source_path"], d["ingested_from"]) for d in documents] == [
        ("a.txt", f"{url}/a.txt")
    ]
    rejected = read_table(paths["rejected_files"]).to_pylist()
    assert [(r["source_path"], r["reason"]) for r in rejected] == [("a//b.txt", "bad_filename")]


def test_a_run_whose_lock_step_fails_releases_the_lease(bucket, monkeypatch):
    import dagster as dg

    from assets.resources import RunLockResource

    def unreachable(self):
        raise OSError("the store went away")

    monkeypatch.setattr(TableStore, "sync", unreachable)
    resource = RunLockResource(processed_dir=f"s3://{bucket}/out", timeout_s=0)
    with pytest.raises(OSError, match="went away"):
        resource.setup_for_execution(dg.build_init_resource_context())
    fs, _ = filesystem(f"s3://{bucket}")
    assert not fs.exists(f"{bucket}/out/{LOCK_OBJECT}")  # the next run need not wait for it


def test_docthemes_rollback_switches_the_stores_pointer(bucket, monkeypatch):
    from typer.testing import CliRunner

    from assets.cli import app

    url = f"s3://{bucket}/out"
    store = open_store(url)
    with store.lock():
        for i, n in enumerate((1, 2), 1):
            _stage(store, f"r{i}", {"a": n})
            store.publish(f"r{i}")
    monkeypatch.setenv("DOCTHEMES_PROCESSED_DIR", url)
    result = CliRunner().invoke(app, ["rollback"])
    assert result.exit_code == 0, result.output
    assert f"{url} now publishes snapshot" in result.output
    assert _remote_rows(url, "a") == 1
    again = CliRunner().invoke(app, ["rollback"])
    assert again.exit_code == 2 and "no earlier snapshot" in again.output
