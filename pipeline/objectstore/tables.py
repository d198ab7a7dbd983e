"""Published tables on an object store: snapshots under a prefix, one pointer object.

Layout under the output URL::

    _current                      the published snapshot's name: one object, one PUT
    _snapshots/<name>/*.parquet   one complete set of tables, never rewritten
    _snapshots/<name>/PUBLISHING  written after the tables: the snapshot is complete
    .docthemes.lock               the run lock (pipeline.objectstore.lease)

A run works in a local copy of the output (the same layout as a local output dir,
:mod:`pipeline.snapshots`), in :func:`pipeline.objectstore.work_dir`. At its start the copy is
brought to the published snapshot (:meth:`RemoteTables.pull`); to publish, the new snapshot is
uploaded, marked complete, and switched to by a PUT of ``_current`` conditional on its ETag
being the one the run read, so a reader resolving ``_current`` sees last night's set or
tonight's, and a run can never publish over another's. Readers: :func:`published_url`.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

from pipeline.faults import fault_point
from pipeline.locations import filesystem, is_remote, normalise, store_path, work_dir
from pipeline.objectstore.lease import DEFAULT_TTL_S, Lease
from pipeline.snapshots import (
    CURRENT,
    PUBLISHING,
    ROLLED_BACK,
    SCRATCH_DIR,
    SNAPSHOTS_DIR,
    TableStore,
)

__all__ = ["PublicationConflictError", "RemoteTables", "open_store", "published_url"]

log = logging.getLogger(__name__)


class PublicationConflictError(RuntimeError):
    """The published snapshot changed while this run worked: it must not publish over it."""


def open_store(location: str, lease_ttl_s: float = DEFAULT_TTL_S) -> TableStore:
    """The table store of an output location: the dir itself, or a URL's local working copy."""
    location = normalise(location)
    if not is_remote(location):
        return TableStore(location)
    return TableStore(work_dir(location), remote=RemoteTables(location, lease_ttl_s))


def published_url(url: str, table: str) -> str:
    """The URL of ``table`` in the snapshot published at ``url`` now (read ``_current`` once).

    Raises:
        FileNotFoundError: Before the first publication.
    """
    remote = RemoteTables(url)
    name, _ = remote.pointer()
    if name is None:
        raise FileNotFoundError(f"nothing is published at {url} yet")
    return f"{remote.url}/{SNAPSHOTS_DIR}/{name}/{table}.parquet"


class RemoteTables:
    """The snapshots and the pointer under ``url``, and the lease that guards them."""

    def __init__(self, url: str, lease_ttl_s: float = DEFAULT_TTL_S) -> None:
        """Store the URL; the store is first contacted by a method call."""
        self.url = normalise(url)
        self.lease = Lease(self.url, lease_ttl_s)
        self._root = store_path(self.url)

    @property
    def fs(self) -> Any:
        """The fsspec file system (made on first use, then reused per endpoint)."""
        return filesystem(self.url)[0]

    def _path(self, *parts: str) -> str:
        return "/".join((self._root, *parts))

    def pointer(self) -> tuple[str | None, str | None]:
        """(published snapshot name, the pointer object's ETag), or (None, None) before any."""
        path = self._path(CURRENT)
        try:
            etag = str(self.fs.info(path)["ETag"])
            name = self.fs.cat_file(path).decode("utf-8").strip()
        except FileNotFoundError:
            return None, None
        return name or None, etag

    def snapshot_names(self) -> tuple[list[str], set[str]]:
        """(complete snapshots, oldest first; the names of those rolled back)."""
        marks = self.fs.glob(self._path(SNAPSHOTS_DIR, "*", "*"))
        complete = sorted(p.split("/")[-2] for p in marks if p.endswith("/" + PUBLISHING))
        rolled = {p.split("/")[-2] for p in marks if p.endswith("/" + ROLLED_BACK)}
        return complete, rolled

    def pull(self, store: TableStore) -> str | None:
        """Bring the local copy to the published snapshot; return what changed, or None.

        Downloads the snapshot unless the copy has it; removes local snapshots that were never
        published (a run killed before its switch, or whose upload failed) and marks those
        newer than the published one rolled back, so ``recover`` does not roll them forward.
        An empty store empties the copy, as a deleted output dir would. Only safe while holding
        the local run lock.
        """
        name, _ = self.pointer()
        local = store.current_snapshot()
        if name is None:
            if local is None and not store.snapshots():
                return None
            store.reset()
            return f"emptied the local copy: nothing is published at {self.url}"
        if local is not None and local.name == name:
            return None
        complete, rolled = self.snapshot_names()
        target = store.base_dir / SNAPSHOTS_DIR / name
        if not (target / PUBLISHING).is_file():
            self._download(name, target, store.base_dir / SCRATCH_DIR)
        (target / ROLLED_BACK).unlink(missing_ok=True)
        store.switch(target)
        for snapshot in store.snapshots():
            if snapshot.name not in complete:
                shutil.rmtree(snapshot, ignore_errors=True)
            elif snapshot.name > name or snapshot.name in rolled:
                (snapshot / ROLLED_BACK).touch()
        return f"switched the local copy to {name}, published at {self.url}"

    def push(
        self, snapshot: Path, inherited: Collection[str], previous: str | None, keep: int
    ) -> None:
        """Upload a complete local snapshot and publish it; keep the newest ``keep``.

        Tables the run did not write (``inherited``, unchanged since ``previous``) are copied
        within the store instead of uploaded.

        Raises:
            PublicationConflictError: If the published snapshot is not ``previous`` any more.
            LeaseLostError: If this process does not hold the lease.
        """
        self.lease.check()
        published, etag = self.pointer()
        if published != previous:
            raise PublicationConflictError(
                f"{self.url} publishes {published!r}, not {previous!r} as when this run "
                "started: another run published or rolled back meanwhile; nothing published"
            )
        dest = self._path(SNAPSHOTS_DIR, snapshot.name)
        files = sorted(p.name for p in snapshot.glob("*.parquet"))
        uploads = []
        for file in files:
            if previous is not None and file.removesuffix(".parquet") in inherited:
                self.fs.copy(self._path(SNAPSHOTS_DIR, previous, file), f"{dest}/{file}")
            else:
                uploads.append(file)
        if uploads:
            self.fs.put([str(snapshot / f) for f in uploads], [f"{dest}/{f}" for f in uploads])
        self.fs.pipe_file(f"{dest}/{PUBLISHING}", (snapshot / PUBLISHING).read_bytes())
        fault_point("remote-uploaded")
        self.lease.check()
        self._switch(snapshot.name, etag)
        self.prune(keep)
        log.info("published snapshot %s at %s", snapshot.name, self.url)

    def upload(self, path: Path, name: str) -> str:
        """Put one file beside the snapshots (the report) in one PUT; return its URL."""
        self.fs.put_file(str(path), self._path(name))
        return f"{self.url}/{name}"

    def rollback(self) -> tuple[str, str]:
        """Publish the snapshot before the published one again; return (from, to) names.

        Raises:
            ValueError: If there is no earlier snapshot.
        """
        self.lease.check()
        name, etag = self.pointer()
        complete, rolled = self.snapshot_names()
        older = [n for n in complete if name is not None and n < name and n not in rolled]
        if name is None or not older:
            raise ValueError(
                f"no earlier snapshot to roll back to at {self.url}/{SNAPSHOTS_DIR} "
                "(keep_snapshots sets how many are kept)"
            )
        self.fs.pipe_file(self._path(SNAPSHOTS_DIR, name, ROLLED_BACK), b"")
        self._switch(older[-1], etag)
        return name, older[-1]

    def prune(self, keep: int) -> list[str]:
        """Keep the published snapshot and the ``keep - 1`` newest before it; delete the rest."""
        name, _ = self.pointer()
        if name is None:
            return []
        complete, rolled = self.snapshot_names()
        older = [n for n in complete if n < name and n not in rolled]
        kept = {name, *older[max(0, len(older) - (keep - 1)) :]} if keep > 1 else {name}
        folders = {p.rstrip("/").split("/")[-1] for p in self.fs.ls(self._path(SNAPSHOTS_DIR))}
        stale = sorted(folders - kept)
        for folder in stale:
            self.fs.rm(self._path(SNAPSHOTS_DIR, folder), recursive=True)
        return stale

    def _switch(self, name: str, etag: str | None) -> None:
        """One PUT of the pointer, only if it is still the version read (``etag``)."""
        condition: dict[str, str] = {"IfMatch": etag} if etag else {"mode": "create"}
        try:
            self.fs.pipe_file(self._path(CURRENT), f"{name}\n".encode(), **condition)
        except OSError as err:  # 412 Precondition Failed: someone else switched it
            raise PublicationConflictError(
                f"{self.url}/{CURRENT} changed while this run published ({err}); another run "
                "published meanwhile, so this one did not"
            ) from err

    def _download(self, name: str, target: Path, scratch: Path) -> None:
        source = self._path(SNAPSHOTS_DIR, name)
        files = sorted(p for p in self.fs.find(source) if p.count("/") == source.count("/") + 1)
        tmp = scratch / f"pull-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        self.fs.get(files, [str(tmp / p.rsplit("/", 1)[1]) for p in files])
        (tmp / ROLLED_BACK).unlink(missing_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(tmp, target)
