"""Raw and output locations: a path, or an fsspec URL of a file system this machine mounts.

The pipeline's guarantees (the snapshot switch, the run lock, hard-linked snapshots) rest on
POSIX file-system semantics: an atomic rename(2) that replaces a symlink, flock(2)/fcntl(2)
locks and, preferably, hard links. A local disk has them, and so do shared file systems such
as NFSv4, CephFS, Lustre and Amazon EFS, mounted at the same path on every machine of a
cluster. Object stores (s3://, gs://, az://) have no atomic rename, so a URL naming one is
refused with the reason rather than published to half-way (docs/deploy.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

__all__ = ["LocalDir", "LocationError", "local_path"]


class LocationError(ValueError):
    """A location the pipeline cannot keep its guarantees on."""


def local_path(location: str) -> str:
    """``location`` as a local path: unchanged if it is one, the path of a ``file://`` URL.

    Raises:
        LocationError: If the URL names a store without POSIX semantics (or none installed).
    """
    if "://" not in location:
        return location
    from fsspec.core import url_to_fs
    from fsspec.implementations.local import LocalFileSystem

    protocol = location.split("://", 1)[0]
    try:
        fs, path = url_to_fs(location)
    except (ImportError, ValueError) as err:
        raise LocationError(_refusal(location, protocol, str(err))) from err
    if not isinstance(fs, LocalFileSystem):
        raise LocationError(_refusal(location, protocol, "not a POSIX file system"))
    return str(path)


def _refusal(location: str, protocol: str, why: str) -> str:
    return (
        f"{location!r}: {protocol}:// is not a POSIX file system ({why}). The raw and output "
        "dirs must be on one (the snapshot switch is an atomic rename, the run lock a lock "
        "file): a local disk, or a shared file system (NFSv4, CephFS, Lustre, EFS) mounted at "
        "the same path on every machine, given by its path or a file:// URL (docs/deploy.md)"
    )


LocalDir = Annotated[str, AfterValidator(local_path)]
"""A configuration field holding a folder: a path or a ``file://`` URL, stored as a path."""
