"""The raw dir on an object store, mirrored into a local folder that the run reads.

The corpus step reads files and reuses last night's rows for files whose size and mtime are
unchanged, so the mirror keeps both stable: an object is downloaded only when its ETag or size
changes, and its local mtime is the object's LastModified. Objects that vanished are removed
locally, so an emptied bucket reads as an empty raw dir and the shrink guard refuses to
publish it, as for a local folder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.ids import sha256_hex
from pipeline.ingest.paths import Fingerprint
from pipeline.locations import filesystem
from pipeline.storage import TMP_PREFIX

__all__ = ["MirrorReport", "fingerprint_objects", "mirror_objects"]

log = logging.getLogger(__name__)

STATE_FILE = ".docthemes-mirror.json"  # hidden: not an article to the corpus step
# Objects fetched per concurrent batch: enough to keep the connections busy, a bounded list.
GET_BATCH = 256
NAME_MAX = 255  # bytes in one path component on Linux file systems


@dataclass(frozen=True)
class MirrorReport:
    """What a mirror did, and the objects that cannot be files (``rejected_files`` rows)."""

    downloaded: int = 0
    removed: int = 0
    unchanged: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Object:
    rel: str
    path: str
    size: int
    etag: str
    mtime: dt.datetime


def mirror_objects(url: str, local_dir: str | os.PathLike[str]) -> MirrorReport:
    """Make ``local_dir`` hold exactly the (non-hidden) objects under ``url``.

    Raises:
        FileNotFoundError: If the bucket cannot be listed (it does not exist).
    """
    fs, root = filesystem(url)
    local = Path(local_dir)
    local.mkdir(parents=True, exist_ok=True)
    objects, rejected = _split_valid(_list(fs, root))
    state = _read_state(local)
    wanted = {o.rel: o for o in objects}

    removed = 0
    for path in _local_files(local):
        rel = path.relative_to(local).as_posix()
        if rel not in wanted:
            path.unlink()
            state.pop(rel, None)
            removed += 1
    _remove_empty_dirs(local)

    stale = [o for o in objects if not _is_current(local / o.rel, o, state.get(o.rel))]
    for start in range(0, len(stale), GET_BATCH):
        batch = stale[start : start + GET_BATCH]
        tmps = []
        for o in batch:
            target = local / o.rel
            if target.is_dir():  # was a folder, now an object of that name
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmps.append(target.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}"))
        fs.get([o.path for o in batch], [str(t) for t in tmps])
        for o, tmp in zip(batch, tmps, strict=True):
            stamp = o.mtime.timestamp()
            os.utime(tmp, (stamp, stamp))
            os.replace(tmp, local / o.rel)
            state[o.rel] = {"etag": o.etag, "size": o.size}
        _write_state(local, state)  # a killed mirror resumes after the last batch
    _write_state(local, {rel: state[rel] for rel in sorted(wanted) if rel in state})
    report = MirrorReport(len(stale), removed, len(objects) - len(stale), rejected)
    log.info(
        "mirrored %s: %d downloaded, %d removed, %d unchanged, %d not mirrorable",
        url,
        report.downloaded,
        report.removed,
        report.unchanged,
        len(rejected),
    )
    return report


def fingerprint_objects(url: str) -> Fingerprint:
    """One listing's fingerprint of the objects under ``url`` (keys, sizes, ETags)."""
    fs, root = filesystem(url)
    entries = sorted(f"{o.rel}\x1f{o.size}\x1f{o.etag}" for o in _list(fs, root))
    return Fingerprint(len(entries), sha256_hex("\n".join(entries)))


def _list(fs: Any, root: str) -> Iterator[_Object]:
    """Every object under ``root`` whose key has no hidden part (like the local walk)."""
    bucket = root.split("/", 1)[0]
    if not fs.exists(bucket):
        raise FileNotFoundError(f"bucket {bucket!r} does not exist (or cannot be listed)")
    for path, info in sorted(fs.find(root, detail=True).items()):
        if info.get("type") != "file" or not path.startswith(root + "/"):
            continue
        rel = path[len(root) + 1 :]
        if any(part.startswith(".") for part in rel.split("/") if part):
            continue
        mtime = info.get("LastModified") or dt.datetime.now(dt.UTC)
        yield _Object(rel, path, int(info["size"]), str(info.get("ETag", "")), mtime)


def _split_valid(objects: Iterator[_Object]) -> tuple[list[_Object], list[dict[str, Any]]]:
    """Objects that can be files of the mirror, and rejects for those that cannot."""
    listed = list(objects)
    folders = {folder for o in listed for folder in _folders(o.rel)}
    valid, rejected = [], []
    for o in listed:
        why = _bad_key(o.rel, folders)
        if why is None:
            valid.append(o)
        else:
            rejected.append(
                {
                    "source_path": o.rel,
                    "reason": "bad_filename",
                    "detail": f"object key cannot be a file name: {why}",
                    "size_bytes": o.size,
                    "mtime": o.mtime,
                }
            )
    return valid, rejected


def _folders(rel: str) -> Iterator[str]:
    """The folders a key implies: ``a`` and ``a/b`` for ``a/b/c``."""
    parts = rel.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def _bad_key(rel: str, folders: set[str]) -> str | None:
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return "an empty, '.' or '..' part"
    if "\x00" in rel:
        return "a NUL character"
    if any(len(p.encode("utf-8", "surrogateescape")) > NAME_MAX for p in parts):
        return f"a part longer than {NAME_MAX} bytes"
    if rel in folders:
        return "other objects use it as a folder"
    return None


def _is_current(path: Path, obj: _Object, known: dict[str, Any] | None) -> bool:
    if known is None or known.get("etag") != obj.etag or known.get("size") != obj.size:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == obj.size and st.st_mtime == obj.mtime.timestamp()


def _local_files(root: Path) -> Iterator[Path]:
    stack = [root]
    while stack:
        for entry in os.scandir(stack.pop()):
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif Path(entry.path) != root / STATE_FILE:
                yield Path(entry.path)


def _remove_empty_dirs(root: Path) -> None:
    # Bottom-up, so a folder whose folders were all empty is empty by the time it is seen.
    for directory, _, _ in os.walk(root, topdown=False):
        if Path(directory) != root and not os.listdir(directory):
            os.rmdir(directory)


def _read_state(local: Path) -> dict[str, dict[str, Any]]:
    try:
        state = json.loads((local / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(local: Path, state: dict[str, dict[str, Any]]) -> None:
    tmp = local / f"{TMP_PREFIX}{STATE_FILE}"
    tmp.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")
    os.replace(tmp, local / STATE_FILE)
