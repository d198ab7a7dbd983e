"""previous."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True, slots=True)
class PreviousThemes:
    """The last run's discovered and broad themes, read back from its published tables.

    Each claim's previous primary theme is kept as sorted fixed-width ids, not a dict: a few
    dozen bytes a claim instead of a few hundred.
    """

    ids: list[str]
    centroids: np.ndarray
    broad_ids: list[str]
    broad_centroids: np.ndarray
    rows: dict[str, dict[str, Any]]
    claim_keys: np.ndarray  # previous claim ids as bytes, sorted
    claim_themes: np.ndarray  # index into ``ids`` of each key's primary theme

    @classmethod
    def from_rows(
        cls, themes: Sequence[dict[str, Any]], claim_themes: pa.Table
    ) -> PreviousThemes | None:
        """Build from `themes` rows and the `claim_themes` table (at least its key columns)."""
        active = [r for r in themes if r["status"] == "active" and r["centroid"] is not None]
        fine = [r for r in active if r["kind"] == "discovered"]
        broad = [r for r in active if r["kind"] == "broad"]
        if not fine and not broad:
            return None

        def stack(rows: list[dict[str, Any]]) -> np.ndarray:
            if not rows:
                return np.zeros((0, 0), dtype=np.float32)
            return np.asarray([r["centroid"] for r in rows], dtype=np.float32)

        ids = [r["theme_id"] for r in fine]
        primary = claim_themes.filter(
            pc.and_(
                pc.equal(claim_themes.column("rank"), 1),
                pc.is_in(claim_themes.column("theme_id"), pa.array(ids, pa.string())),
            )
        )
        keys = _id_bytes(primary.column("claim_id"))
        codes = pc.index_in(primary.column("theme_id"), pa.array(ids, pa.string()))
        themes_of = np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int32)
        order = np.argsort(keys, kind="stable")
        return cls(
            ids,
            stack(fine),
            [r["theme_id"] for r in broad],
            stack(broad),
            {r["theme_id"]: dict(r) for r in themes if r["kind"] in ("discovered", "broad")},
            keys[order],
            themes_of[order],
        )

    def broad_columns(self) -> np.ndarray:
        """Per fine theme (``ids``), the position of its broad parent in ``broad_ids``, or -1."""
        column = {tid: c for c, tid in enumerate(self.broad_ids)}
        return np.array(
            [column.get(self.rows[tid].get("parent_id") or "", -1) for tid in self.ids],
            dtype=np.int64,
        )

    def labels_of(self, claim_ids: Sequence[str]) -> list[str | None]:
        """Each claim's discovered theme last night, or None."""
        if not len(self.claim_keys) or not claim_ids:
            return [None] * len(claim_ids)
        wanted = np.asarray(claim_ids, dtype=bytes)
        at = np.minimum(np.searchsorted(self.claim_keys, wanted), len(self.claim_keys) - 1)
        found = self.claim_keys[at] == wanted
        return [
            self.ids[self.claim_themes[j]] if f else None for j, f in zip(at, found, strict=True)
        ]


def _id_bytes(ids: pa.ChunkedArray | pa.Array, block: int = 65_536) -> np.ndarray:
    """Ids as a fixed-width bytes array, converted a block at a time (no list of all of them)."""
    parts = [
        np.asarray(ids.slice(a, block).to_pylist(), dtype=bytes) for a in range(0, len(ids), block)
    ]
    if not parts:
        return np.zeros(0, dtype="S1")
    width = max(p.dtype.itemsize for p in parts)
    return np.concatenate([p.astype(f"S{width}") for p in parts])
