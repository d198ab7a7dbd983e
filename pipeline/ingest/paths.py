"""Walking the raw dir and naming its files: iterative, and valid UTF-8 whatever the name."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipeline.ids import sha256_hex


def walk_files(root: Path) -> Iterator[Path]:
    """Every file under ``root`` (not hidden, symlinked folders not followed), like ``os.walk``.

    Iterative: ``os.walk`` recurses once per level and raises RecursionError in folders nested
    about a thousand deep.
    """
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if not entry.is_symlink():
                    stack.append(Path(entry.path))
                continue
            yield Path(entry.path)


def relative_path(path: Path, root: Path) -> str:
    r"""``path`` relative to ``root``, as the tables store it: always valid UTF-8.

    A name that is not valid UTF-8 (``caf\xe9.txt`` from a Windows zip) reaches Python with
    surrogate escapes, which Parquet cannot store; its undecodable bytes are written as
    ``\xNN`` instead (the file is still read from its real name).
    """
    return utf8_safe(path.relative_to(root).as_posix())


def utf8_safe(name: str) -> str:
    r"""A path or message that Parquet can store: undecodable bytes become ``\xNN``."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A cheap summary of a raw dir: file count and a digest of every (path, size, mtime)."""

    n_files: int
    digest: str


def fingerprint_directory(raw_dir: str | os.PathLike[str]) -> Fingerprint:
    """Fingerprint the raw dir with ``stat`` only (no file is opened), for the new-file sensor.

    Any added, removed, renamed or rewritten file changes the digest.
    """
    root = Path(raw_dir)
    entries: list[str] = []
    for path in walk_files(root):
        try:
            st = path.lstat()
        except OSError:
            continue
        entries.append(f"{relative_path(path, root)}\x1f{st.st_size}\x1f{st.st_mtime_ns}")
    entries.sort()
    return Fingerprint(len(entries), sha256_hex("\n".join(entries)))
