"""Read a folder of raw articles into documents, rejects and duplicates, losing nothing.

Every regular file under the raw dir ends up in exactly one of three places: a document, a
rejected file (with a short reason code and a detail), or a duplicate of a document. Nothing here
raises on a bad file; only an unusable raw dir itself is an error.

Modules: :mod:`~pipeline.ingest.scan` lists and reads the raw dir, :mod:`~pipeline.ingest.decode`
turns bytes into normalised text, :mod:`~pipeline.ingest.stated` reads what a text says about
itself, :mod:`~pipeline.ingest.duplicates` finds near duplicates, and
:mod:`~pipeline.ingest.paths` walks folders and names files.
"""

from pipeline.ingest.decode import decode_bytes, normalize_text
from pipeline.ingest.duplicates import (
    find_near_duplicates,
    load_signatures,
    minhash_signature,
    near_duplicates,
    save_signatures,
)
from pipeline.ingest.paths import (
    Fingerprint,
    fingerprint_directory,
    relative_path,
    utf8_safe,
    walk_files,
)
from pipeline.ingest.scan import (
    REJECT_REASONS,
    DirectoryScan,
    IngestConfig,
    IngestResult,
    PreviousFiles,
    RawDirError,
    ingest_directory,
)
from pipeline.ingest.stated import extract_metadata, find_published_date

__all__ = [
    "REJECT_REASONS",
    "DirectoryScan",
    "Fingerprint",
    "IngestConfig",
    "IngestResult",
    "PreviousFiles",
    "RawDirError",
    "decode_bytes",
    "extract_metadata",
    "find_near_duplicates",
    "find_published_date",
    "fingerprint_directory",
    "ingest_directory",
    "load_signatures",
    "minhash_signature",
    "near_duplicates",
    "normalize_text",
    "relative_path",
    "save_signatures",
    "utf8_safe",
    "walk_files",
]
