"""Snapshot publication: a run's tables published as one set, by one atomic switch.

Layout of the output dir (docs/pipeline.md#publication)::

    <table>.parquet -> _current/<table>.parquet   the analysts' paths, links made once
    _current -> _snapshots/<n>-<time>-<run_id>    switched atomically by each publication
    _snapshots/<n>-<time>-<run_id>/               one complete set of tables, never rewritten
    .staging/<run_id>/                            a run's tables until it publishes

(``_`` and ``.`` paths are skipped by readers of the folder as a dataset: pyarrow, Spark.)

An output dir on an object store is a local copy in this layout whose snapshots are also
uploaded and published there (``remote``, :mod:`pipeline.objectstore.tables`).

Only the last few snapshots are kept (``keep``); ``docthemes rollback`` switches back to the one
before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline.faults import fault_point
from pipeline.storage import TMP_PREFIX, fsync_dir, read_table, table_path

if TYPE_CHECKING:
    from pipeline.objectstore.tables import RemoteTables

log = logging.getLogger(__name__)

STAGING_DIR = ".staging"
SCRATCH_DIR = ".scratch"  # streaming steps' files before the IO manager places them
LOCK_FILE = ".docthemes.lock"
PUBLISHING = "PUBLISHING"  # marks a staging dir complete: the snapshot may be published
SNAPSHOTS_DIR = "_snapshots"  # "_": dataset readers of the dir skip it
CURRENT = "_current"  # link to the published snapshot; every <table>.parquet resolves through it
ROLLED_BACK = "ROLLED_BACK"  # marks a snapshot abandoned by `docthemes rollback`
DEFAULT_KEEP_SNAPSHOTS = 3


def _link_or_copy(source: Path, destination: Path) -> None:
    # Published files are never written again, so snapshots share them as hard links.
    try:
        os.link(source, destination)
    except OSError:  # a file system without hard links
        shutil.copy2(source, destination)


class RunLockedError(RuntimeError):
    """Another docthemes run holds the lock on the output dir."""


class TableStore:
    """Published tables in ``base_dir`` and per-run staging under ``base_dir/.staging/<run_id>``.

    A run writes every table to its staging dir; :meth:`publish` then makes it a snapshot and
    switches to it. Until then readers see the previous night's tables, so a run that fails or
    is killed publishes nothing.
    """

    def __init__(
        self, base_dir: str | os.PathLike[str], remote: RemoteTables | None = None
    ) -> None:
        """Store the output dir (with ``remote``: the local copy of an object store's)."""
        self.base_dir = Path(base_dir)
        self.remote = remote

    @property
    def location(self) -> str:
        """Where the tables are published: the output dir, or the object store's URL."""
        return self.remote.url if self.remote is not None else str(self.base_dir)

    def published(self, name: str) -> Path:
        """Path of a published table: ``<base_dir>/<name>.parquet``, a link into the snapshot."""
        return table_path(self.base_dir, name)

    def table_names(self) -> list[str]:
        """Names of the published tables, sorted."""
        current = self.current_snapshot()
        if current is not None:
            return sorted(p.stem for p in current.glob("*.parquet"))
        # Before the first snapshot (an output dir of an older version): plain files.
        return sorted(p.stem for p in self.base_dir.glob("*.parquet") if p.is_file())

    def staged(self, name: str, run_id: str) -> Path:
        """Path of a table staged by ``run_id``."""
        return table_path(self.base_dir / STAGING_DIR / run_id, name)

    def scratch(self, name: str) -> Path:
        """A new path where a streaming step writes ``name`` before the IO manager places it.

        Under the output dir (one file system, so the move is a rename), in a hidden folder: a
        killed run's leftover must not match a reader's ``data/processed/*.parquet``. Named
        like a temporary file, so the next run removes it.
        """
        folder = self.base_dir / SCRATCH_DIR
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{TMP_PREFIX}{uuid.uuid4().hex}-{name}.parquet"

    def place(self, source: Path, destination: Path) -> None:
        """Move a finished file (see :meth:`scratch`) to its staged or published path."""
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(source, 0o644)
        os.replace(source, destination)
        fsync_dir(destination.parent)

    def current(self, name: str, run_id: str | None = None) -> Path:
        """The table as ``run_id`` sees it: its own staged version, else the published one."""
        if run_id is not None and self.staged(name, run_id).exists():
            return self.staged(name, run_id)
        return self.published(name)

    def read(
        self, name: str, run_id: str | None = None, columns: list[str] | None = None
    ) -> pa.Table:
        """Read :meth:`current`; raises :class:`MissingTableError` if it does not exist."""
        return read_table(self.current(name, run_id), columns=columns)

    def previous(self, name: str, columns: list[str] | None = None) -> pa.Table | None:
        """The published table, or None before the first successful run."""
        path = self.published(name)
        return read_table(path, columns=columns) if path.exists() else None

    def staged_names(self, run_id: str) -> list[str]:
        """Names of the tables ``run_id`` has staged, sorted."""
        stage = self.base_dir / STAGING_DIR / run_id
        return sorted(p.stem for p in stage.glob("*.parquet")) if stage.is_dir() else []

    def snapshots(self) -> list[Path]:
        """Complete snapshots, oldest first (their names sort by publication time)."""
        root = self.base_dir / SNAPSHOTS_DIR
        if not root.is_dir():
            return []
        return sorted(p for p in root.iterdir() if (p / PUBLISHING).is_file())

    def current_snapshot(self) -> Path | None:
        """The snapshot the ``current`` link points to, or None before the first one."""
        link = self.base_dir / CURRENT
        if not link.is_symlink():
            return None
        return (self.base_dir / os.readlink(link)).resolve()

    def publish(self, run_id: str, keep: int = DEFAULT_KEEP_SNAPSHOTS) -> list[str]:
        """Publish the tables staged by ``run_id`` as one snapshot; return their names.

        The staging dir is completed with the published tables this run did not write (hard
        links), marked complete (``PUBLISHING``, made durable), renamed into ``snapshots/``, and
        published by one atomic switch of the ``current`` link, through which every
        ``<table>.parquet`` path resolves: a reader sees last night's set or tonight's, never a
        mix. A run killed after the rename is rolled forward by :meth:`recover`. The newest
        ``keep`` snapshots stay, for :meth:`rollback`.

        With a ``remote`` store the snapshot is first uploaded and published there (one
        conditional PUT of its pointer); if that fails, the local snapshot is marked rolled
        back, the local copy keeps last night's set, and the error is raised.
        """
        stage = self.base_dir / STAGING_DIR / run_id
        if not stage.is_dir():
            return []
        names = self.staged_names(run_id)
        previous = self.current_snapshot()
        inherited = [name for name in self.table_names() if name not in names]
        for name in inherited:
            _link_or_copy(self.published(name).resolve(), stage / f"{name}.parquet")
        with open(stage / PUBLISHING, "w", encoding="utf-8") as fh:
            fh.write("\n".join(names) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        fsync_dir(stage)
        root = self.base_dir / SNAPSHOTS_DIR
        root.mkdir(exist_ok=True)
        # Names sort in publication order: a sequence number, then the time and the run.
        numbers = (p.name.split("-")[0] for p in root.iterdir())
        last = max((int(n) for n in numbers if n.isdigit()), default=0)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        snapshot = root / f"{last + 1:08d}-{stamp}-{run_id}"
        os.rename(stage, snapshot)
        fsync_dir(root)
        fault_point("snapshot-renamed")
        if self.remote is not None:
            try:
                self.remote.push(
                    snapshot, inherited, None if previous is None else previous.name, keep
                )
            except BaseException:
                (snapshot / ROLLED_BACK).touch()  # not published: recover() must not either
                raise
        self.switch(snapshot)
        self.prune(keep)
        log.info("published %s (snapshot %s)", ", ".join(names), snapshot.name)
        return names

    def recover(self) -> list[str]:
        """Finish publications killed half-way; return the snapshots switched to.

        A complete snapshot newer than the current one (and not rolled back) was killed
        between its rename and the switch: it is switched to. The table links of the current
        snapshot are (re)made, in case a kill came between the switch and them. Only safe while
        holding the run lock.
        """
        done = []
        current = self.current_snapshot()
        newer = [
            s
            for s in self.snapshots()
            if (current is None or s.name > current.name) and not (s / ROLLED_BACK).exists()
        ]
        if newer:
            self.switch(newer[-1])
            done.append(newer[-1].name)
            log.warning("finished publishing snapshot %s", newer[-1].name)
        elif current is not None:
            self._link_tables(current)
        return done

    def rollback(self) -> tuple[str, str]:
        """Publish the snapshot before the current one again; return (from, to) names.

        The abandoned snapshot is marked, so :meth:`recover` does not roll it forward. Only
        safe while holding the run lock.

        Raises:
            ValueError: If there is no earlier snapshot.
        """
        if self.remote is not None:
            left, now = self.remote.rollback()
            self.remote.pull(self)
            return left, now
        current = self.current_snapshot()
        older = [
            s
            for s in self.snapshots()
            if current is not None and s.name < current.name and not (s / ROLLED_BACK).exists()
        ]
        if current is None or not older:
            raise ValueError(
                f"no earlier snapshot to roll back to in {self.base_dir / SNAPSHOTS_DIR} "
                "(keep_snapshots sets how many are kept)"
            )
        (current / ROLLED_BACK).touch()
        fsync_dir(current)
        self.switch(older[-1])
        return current.name, older[-1].name

    def prune(self, keep: int) -> list[str]:
        """Keep the current snapshot and the ``keep - 1`` newest before it; delete the rest.

        Rolled-back snapshots are deleted too (after a rollback, at the next publication), as
        are incomplete ones of killed runs older than the current one.
        """
        current = self.current_snapshot()
        if current is None:
            return []
        root = self.base_dir / SNAPSHOTS_DIR
        everything = sorted(p for p in root.iterdir() if p.is_dir())
        older = [
            s for s in self.snapshots() if s.name < current.name and not (s / ROLLED_BACK).exists()
        ]
        kept = {current, *older[max(0, len(older) - (keep - 1)) :]} if keep > 1 else {current}
        # Newer than the current: a rollback's abandoned snapshots, deleted once another run
        # publishes (this one is then the newest), or the killed publication recover() finishes.
        stale = [
            s
            for s in everything
            if s not in kept and (s.name < current.name or (s / ROLLED_BACK).exists())
        ]
        for s in stale:
            shutil.rmtree(s, ignore_errors=True)
        return [s.name for s in stale]

    def sync(self) -> str | None:
        """Bring a remote store's local copy to its published snapshot; say what changed.

        Nothing to do for a local output dir. Only safe while holding the run lock (or the
        local lock: :meth:`lock` with ``local_only``).
        """
        return self.remote.pull(self) if self.remote is not None else None

    def reset(self) -> None:
        """Forget every snapshot and table link (a remote store's copy, when it is emptied)."""
        for path in self.base_dir.glob("*.parquet"):
            if path.is_symlink():
                path.unlink()
        (self.base_dir / CURRENT).unlink(missing_ok=True)
        shutil.rmtree(self.base_dir / SNAPSHOTS_DIR, ignore_errors=True)

    def switch(self, snapshot: Path) -> None:
        """Point ``current`` at ``snapshot`` (one atomic rename), then link its tables."""
        link = self.base_dir / CURRENT
        tmp = self.base_dir / f"{TMP_PREFIX}{CURRENT}-{uuid.uuid4().hex}"
        os.symlink(os.path.relpath(snapshot, self.base_dir), tmp)
        os.replace(tmp, link)
        fsync_dir(self.base_dir)
        fault_point("switched")
        self._link_tables(snapshot)

    def _link_tables(self, snapshot: Path) -> None:
        """Make each ``<table>.parquet`` of the output dir a link through ``current``.

        Made once per table name; a plain file of an older version is replaced atomically.
        """
        for path in sorted(snapshot.glob("*.parquet")):
            target = Path(CURRENT) / path.name
            published = self.base_dir / path.name
            if published.is_symlink() and Path(os.readlink(published)) == target:
                continue
            tmp = self.base_dir / f"{TMP_PREFIX}{uuid.uuid4().hex}-{path.name}"
            os.symlink(target, tmp)
            os.replace(tmp, published)
        fsync_dir(self.base_dir)

    def inherit_staging(self, parent_run_id: str, run_id: str) -> list[str] | None:
        """Give ``run_id`` the tables ``parent_run_id`` staged (a re-execution resumes from them).

        Returns the names linked, or None if the parent left no staging dir.
        """
        parent = self.base_dir / STAGING_DIR / parent_run_id
        if not parent.is_dir() or (parent / PUBLISHING).exists():
            return None
        names = self.staged_names(parent_run_id)
        for name in names:
            own = self.staged(name, run_id)
            if not own.exists():
                own.parent.mkdir(parents=True, exist_ok=True)
                _link_or_copy(parent / f"{name}.parquet", own)
        return names

    def discard_staging(self, keep: str | None = None) -> list[str]:
        """Remove staging dirs of runs that died before publishing (all but ``keep``)."""
        root = self.base_dir / STAGING_DIR
        if not root.is_dir():
            return []
        removed = []
        for stage in sorted(root.iterdir()):
            if stage.name != keep:
                shutil.rmtree(stage, ignore_errors=True)
                removed.append(stage.name)
        return removed

    @contextlib.contextmanager
    def lock(self, timeout_s: float = 0.0, local_only: bool = False) -> Iterator[None]:
        """Hold the output dir's run lock; two runs at once would overwrite each other's tables.

        A remote store's lock is its lease (:mod:`pipeline.objectstore.lease`), taken after
        the local copy's lock file unless ``local_only`` (enough to read or refresh the copy).

        Raises:
            RunLockedError: If another run holds it for longer than ``timeout_s`` seconds.
        """
        from filelock import FileLock, Timeout

        self.base_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self.base_dir / LOCK_FILE)
        try:
            lock.acquire(timeout=timeout_s)
        except Timeout as err:
            raise RunLockedError(
                f"another docthemes run is writing to {self.base_dir} (lock file "
                f"{self.base_dir / LOCK_FILE}); waited {timeout_s:.0f} s. Let it finish, or "
                "raise run_lock.timeout_s to wait longer."
            ) from err
        try:
            if self.remote is None or local_only:
                yield
                return
            from pipeline.objectstore.lease import LeaseHeldError

            try:
                self.remote.lease.acquire(timeout_s)
            except LeaseHeldError as err:
                raise RunLockedError(f"{err}. Let it finish, or raise run_lock.timeout_s.") from err
            try:
                yield
            finally:
                self.remote.lease.release()
        finally:
            lock.release()
