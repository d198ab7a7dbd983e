"""Article metadata beside the articles: outlet, publication date, address, title and authors.

Two places, both optional (docs/tables.md, "Article metadata"):

* a sidecar ``<name>.json`` next to ``<name>.txt``: one JSON object;
* one ``metadata.csv`` or ``metadata.parquet`` at the top of the raw dir, one row per article,
  keyed by ``source_path`` (the path relative to the raw dir, as in `documents`).

A sidecar wins over the table, and both win over what the text states. Fields: ``source``
(outlet), ``published_date`` (ISO date, or a timestamp whose date is taken), ``url``, ``title``,
``authors`` (a list, or one string with names separated by ";"). Other keys are ignored (CMS
exports carry many). Metadata that cannot be read or has a field of the wrong type is a
`bad_metadata` reject, and the article is still read, without it.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any, Final

import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from pipeline.ids import sha256_hex

__all__ = [
    "METADATA_TABLES",
    "SIDECAR_SUFFIX",
    "ArticleMetadata",
    "MetadataError",
    "read_metadata_table",
    "read_sidecar",
]

SIDECAR_SUFFIX: Final = ".json"
METADATA_TABLES: Final = ("metadata.csv", "metadata.parquet")
_MAX_SIDECAR_BYTES: Final = 1_000_000
_KEY: Final = "source_path"


class MetadataError(ValueError):
    """Metadata that cannot be used; the message says why."""


class ArticleMetadata(BaseModel):
    """One article's metadata, validated."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: str | None = None
    published_date: dt.date | None = None
    url: str | None = None
    title: str | None = None
    authors: tuple[str, ...] = ()

    @field_validator("source", "url", "title", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return " ".join(value.split()) or None
        return value

    @field_validator("published_date", mode="before")
    @classmethod
    def _date(cls, value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return None
            try:
                return dt.date.fromisoformat(text[:10])
            except ValueError as err:
                raise ValueError(f"not an ISO date (YYYY-MM-DD): {text!r}") from err
        return value

    @field_validator("authors", mode="before")
    @classmethod
    def _authors(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            value = value.split(";")
        if isinstance(value, list | tuple):
            return tuple(" ".join(str(a).split()) for a in value if str(a).strip())
        return value

    def sha256(self) -> str:
        """Hash of the values (a changed sidecar means the article's row is rebuilt)."""
        return sha256_hex(self.model_dump_json())


def _validated(data: Any, where: str) -> ArticleMetadata:
    if not isinstance(data, dict):
        raise MetadataError(f"{where}: expected a JSON object, got {type(data).__name__}")
    try:
        return ArticleMetadata.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise MetadataError(f"{where}: {problems}") from None


def read_sidecar(path: Path) -> ArticleMetadata:
    """Read and validate one sidecar.

    Raises:
        MetadataError: If it is unreadable, too large, not JSON or has a bad field.
    """
    try:
        size = path.stat().st_size
        if size > _MAX_SIDECAR_BYTES:
            raise MetadataError(f"sidecar of {size:,} bytes (limit {_MAX_SIDECAR_BYTES:,})")
        data = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MetadataError(f"cannot read the sidecar: {err}") from None
    return _validated(data, "sidecar")


def read_metadata_table(path: Path) -> tuple[dict[str, ArticleMetadata], list[str]]:
    """Read ``metadata.csv`` or ``metadata.parquet``.

    Returns:
        Metadata by ``source_path``, and one message per row that could not be used.

    Raises:
        MetadataError: If the file cannot be read at all or has no ``source_path`` column.
    """
    try:
        if path.suffix == ".parquet":
            rows = pq.read_table(path).to_pylist()
        else:
            with path.open(encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error, ValueError) as err:
        raise MetadataError(f"cannot read {path.name}: {err}") from None
    if rows and _KEY not in rows[0]:
        raise MetadataError(f"{path.name} has no {_KEY!r} column")
    found: dict[str, ArticleMetadata] = {}
    problems: list[str] = []
    for number, row in enumerate(rows, start=2 if path.suffix == ".csv" else 1):
        key = str(row.get(_KEY) or "").strip()
        where = f"row {number}" + (f" ({key})" if key else "")
        if not key:
            problems.append(f"{where}: no {_KEY}")
            continue
        if key in found:
            problems.append(f"{where}: {key} listed twice; the first row is used")
            continue
        try:
            found[key] = _validated(row, where)
        except MetadataError as err:
            problems.append(str(err))
    return found, problems
