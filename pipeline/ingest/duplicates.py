"""Near-duplicate articles: MinHash LSH (datasketch) proposes pairs, exact Jaccard decides.

A document's word 5-shingles are hashed once (CRC-32); datasketch's MinHash of those hashes
goes into a :class:`datasketch.MinHashLSH` of 16 bands of 4 rows, whose buckets propose
candidate pairs. A candidate is a near duplicate only if the exact Jaccard similarity of the two
shingle sets reaches the threshold, so the answer does not depend on the hashing: only which
pairs are looked at does.
"""

from __future__ import annotations

import logging
import os
import re
import zlib
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Final

import numpy as np
import pyarrow as pa
from datasketch import LeanMinHash, MinHash, MinHashLSH

from pipeline.storage import read_table, write_table

__all__ = [
    "SIGNATURE_SCHEME",
    "find_near_duplicates",
    "load_signatures",
    "minhash_signature",
    "near_duplicates",
    "save_signatures",
    "shingles",
]

log = logging.getLogger(__name__)

_WORD: Final = re.compile(r"\w+")
_NUM_PERM: Final = 64
# 16 bands of 4 rows: a pair at Jaccard 0.9 shares a bucket with probability > 0.99999, and one at
# 0.5 with probability 0.64, so few pairs below the threshold are verified.
_BANDS: Final = 16
_SEED: Final = 20240611
_SCHEME: Final = "affine32"
SIGNATURE_SCHEME: Final = f"datasketch-{_SCHEME}-{_NUM_PERM}-{_SEED}"
"""Names how cached signatures were made; a cache made otherwise is ignored."""
_SCHEME_KEY: Final = b"docthemes.minhash"
_PERMUTATIONS: Final = MinHash(num_perm=_NUM_PERM, seed=_SEED, scheme=_SCHEME).permutations


def shingles(text: str, k: int = 5) -> set[int]:
    """CRC-32 hashes of the lower-cased word ``k``-shingles (the whole text if shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) < k:
        return {zlib.crc32(" ".join(words).encode())} if words else set()
    return {zlib.crc32(" ".join(words[i : i + k]).encode()) for i in range(len(words) - k + 1)}


def minhash_signature(text: str) -> np.ndarray | None:
    """MinHash signature (uint32, one value per permutation) of a text; None without words."""
    hashed = shingles(text)
    if not hashed:
        return None
    # The shingles are already 32-bit hashes: datasketch permutes them as they are.
    minhash = MinHash(
        num_perm=_NUM_PERM, seed=_SEED, hashfunc=int, permutations=_PERMUTATIONS, scheme=_SCHEME
    )
    minhash.update_batch(hashed)
    signature: np.ndarray = minhash.hashvalues
    return signature


def near_duplicates(
    doc_ids: Sequence[str],
    signatures: Mapping[str, np.ndarray],
    text_of: Callable[[list[int]], list[str]],
    threshold: float = 0.9,
    verify_block: int = 256,
) -> dict[str, tuple[str, float]]:
    """Flag documents that nearly copy an earlier one, from their signatures.

    Only candidates' texts are fetched, a block at a time, so the texts need not be in memory.

    Args:
        doc_ids: In processing order; the earlier document is the original.
        signatures: By doc_id (a document without one has no words and matches nothing).
        text_of: Texts of documents given by position in ``doc_ids``.
        threshold: Minimum Jaccard similarity.
        verify_block: Candidate pairs verified together (at most twice as many shingle sets
            held at once).

    Returns:
        For each near-duplicate doc_id, the doc_id it resembles most and the Jaccard score.
    """
    index = MinHashLSH(num_perm=_NUM_PERM, params=(_BANDS, _NUM_PERM // _BANDS))
    candidates: dict[int, list[int]] = {}
    for i, doc_id in enumerate(doc_ids):
        signature = signatures.get(doc_id)
        if signature is None:
            continue
        minhash = LeanMinHash(seed=_SEED, hashvalues=signature, scheme=_SCHEME)
        earlier = index.query(minhash)  # only documents before this one are in the index yet
        if earlier:
            candidates[i] = sorted(earlier)
        index.insert(i, minhash, check_duplication=False)
    best: dict[int, tuple[float, int]] = {}
    pairs = [(i, j) for i in sorted(candidates) for j in candidates[i]]
    # A block of pairs at a time: shingle sets cost ~25 kB a document, and a corpus of
    # reprinted wire stories can make every document a candidate of many others.
    for start in range(0, len(pairs), verify_block):
        block = pairs[start : start + verify_block]
        involved = sorted({i for i, _ in block} | {j for _, j in block})
        sets = dict(zip(involved, map(shingles, text_of(involved)), strict=True))
        for i, j in block:
            a, b = sets[i], sets[j]
            jac = len(a & b) / len(a | b)
            if jac >= threshold and (i not in best or jac > best[i][0]):
                best[i] = (jac, j)  # ties keep the earliest original: pairs come in j order
    return {doc_ids[i]: (doc_ids[j], round(jac, 4)) for i, (jac, j) in sorted(best.items())}


def find_near_duplicates(
    docs: list[tuple[str, str]],
    threshold: float = 0.9,
    signatures: MutableMapping[str, np.ndarray] | None = None,
) -> Mapping[str, tuple[str, float]]:
    """:func:`near_duplicates` of documents in memory.

    Args:
        docs: ``(doc_id, text)`` in processing order; the earlier document is the original.
        threshold: Minimum Jaccard similarity.
        signatures: MinHash signatures by doc_id (a doc_id is a hash of the text); missing ones
            are computed and added, so a night with 20 new articles shingles only those.
    """
    sigs = signatures if signatures is not None else {}
    for doc_id, text in docs:
        if doc_id not in sigs:
            sig = minhash_signature(text)
            if sig is not None:
                sigs[doc_id] = sig
    return near_duplicates(
        [d for d, _ in docs], sigs, lambda idx: [docs[i][1] for i in idx], threshold
    )


def load_signatures(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """MinHash signatures by doc_id from the cache file; empty if absent or made otherwise."""
    if not os.path.exists(path):
        return {}
    try:
        table = read_table(path)
        scheme = (table.schema.metadata or {}).get(_SCHEME_KEY, b"").decode()
        if scheme != SIGNATURE_SCHEME:
            log.info("signature cache %s was made by %r: recomputing", path, scheme or "unknown")
            return {}
        col = table.column("signature").combine_chunks()
        matrix = col.values.to_numpy(zero_copy_only=False).reshape(len(col), _NUM_PERM)
        return dict(zip(table.column("doc_id").to_pylist(), matrix, strict=True))
    except (OSError, KeyError, ValueError, pa.ArrowException) as err:
        log.warning("ignoring unreadable signature cache %s: %s", path, err)
        return {}


def save_signatures(
    path: str | os.PathLike[str], signatures: Mapping[str, np.ndarray], doc_ids: list[str]
) -> None:
    """Write the signatures of ``doc_ids`` (removed documents drop out of the cache)."""
    kept = sorted(d for d in set(doc_ids) if d in signatures)
    if not kept:
        return
    matrix = np.stack([signatures[d] for d in kept]).astype(np.uint32)
    flat = pa.array(matrix.reshape(-1), type=pa.uint32())
    table = pa.table(
        {
            "doc_id": pa.array(kept, pa.string()),
            "signature": pa.FixedSizeListArray.from_arrays(flat, _NUM_PERM),
        }
    )
    write_table(table.replace_schema_metadata({_SCHEME_KEY: SIGNATURE_SCHEME.encode()}), path)
