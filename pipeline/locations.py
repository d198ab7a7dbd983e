"""Raw and output locations: a path, a ``file://`` URL, or an ``s3://`` URL.

A path or ``file://`` URL is used in place; the pipeline's guarantees there rest on POSIX
semantics (docs/deploy.md). An ``s3://`` location is worked on through a local copy
(:mod:`pipeline.objectstore`), kept in :func:`work_dir`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator

__all__ = [
    "PROTOCOLS",
    "WORK_DIR_ENV",
    "LocalDir",
    "Location",
    "LocationError",
    "filesystem",
    "is_remote",
    "local_path",
    "normalise",
    "store_path",
    "work_dir",
]

PROTOCOLS = ("s3",)  # stores whose conditional writes the lock and the pointer rely on
WORK_DIR_ENV = "DOCTHEMES_WORK_DIR"


class LocationError(ValueError):
    """A location the pipeline cannot keep its guarantees on."""


def is_remote(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is an object-store URL (anything but a path or ``file://``)."""
    text = os.fspath(location)
    return "://" in text and not text.startswith("file://")


def normalise(location: str) -> str:
    """A path unchanged, a ``file://`` URL as its path, an ``s3://`` URL without a final ``/``.

    Raises:
        LocationError: For a URL of another store, or one without a bucket.
    """
    if "://" not in location:
        return location
    protocol, _, rest = location.partition("://")
    if protocol == "file":
        return "/" + rest.lstrip("/") if rest else "/"
    if protocol not in PROTOCOLS:
        raise LocationError(
            f"{location!r}: {protocol}:// is not supported. The raw and output dirs take a "
            "path, a file:// URL or an s3:// URL (an S3-compatible store with conditional "
            "writes: the run lock and the publication rely on them, docs/deploy.md)"
        )
    bucket = rest.split("/", 1)[0]
    if not bucket:
        raise LocationError(f"{location!r} names no bucket (s3://<bucket>/<prefix>)")
    return f"s3://{rest.strip('/')}"


def store_path(url: str) -> str:
    """The path of an ``s3://`` URL in its file system: ``bucket/prefix``."""
    return normalise(url).split("://", 1)[1]


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path of its root in it (``bucket/prefix``).

    Listings are not cached: another machine's writes must be seen at once. The endpoint and
    the credentials are the standard ones (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``…); the
    file system object is reused per endpoint (making one costs a few hundred ms).
    """
    from fsspec.core import url_to_fs

    endpoint = {"endpoint_url": os.environ.get("AWS_ENDPOINT_URL")}
    fs, _ = url_to_fs(normalise(url), use_listings_cache=False, client_kwargs=endpoint)
    return fs, store_path(url)


def work_dir(url: str) -> Path:
    """The local folder that holds the working copy of ``url``: one per URL.

    ``$DOCTHEMES_WORK_DIR`` (default ``$XDG_CACHE_HOME/docthemes``, ``~/.cache/docthemes``)
    ``/<16 hex digits of the URL's SHA-256>``.
    """
    root = os.environ.get(WORK_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "docthemes"
    )
    digest = hashlib.sha256(normalise(url).encode()).hexdigest()[:16]
    return Path(root) / digest


def local_path(location: str) -> str:
    """``location`` as a local path (a path unchanged, a ``file://`` URL as its path).

    Raises:
        LocationError: If it is an object-store URL (or not a supported one).
    """
    location = normalise(location)
    if is_remote(location):
        raise LocationError(f"{location!r}: this setting takes a local folder, not a URL")
    return location


LocalDir = Annotated[str, AfterValidator(local_path)]
"""A configuration field holding a local folder: a path or a ``file://`` URL, stored as a path."""

Location = Annotated[str, AfterValidator(normalise)]
"""A configuration field holding a raw or output location: a path, ``file://`` or ``s3://``."""
