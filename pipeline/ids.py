"""Content-derived identifiers: the same input always yields the same id, on any machine."""

from __future__ import annotations

import hashlib

__all__ = ["sha256_hex", "stable_id"]


def sha256_hex(data: bytes | str) -> str:
    """Return the hex SHA-256 of bytes, or of a string encoded as UTF-8."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def stable_id(*parts: object, length: int = 16) -> str:
    """Return a short hex id derived from ``parts``.

    Parts are joined with a separator that cannot appear in their string forms' boundaries
    ambiguously (the unit separator), so ``("a", "bc")`` and ``("ab", "c")`` differ.
    """
    joined = "\x1f".join(str(p) for p in parts)
    return sha256_hex(joined)[:length]
