"""A folder of hostile input for ingestion tests: every kind of file a real drop can contain."""

import codecs
import gzip
import os
import socket
import threading
import time
from pathlib import Path

ARTICLE = (
    "Energy Ties Deepen\n\n"
    "Russia has redirected much of its oil and gas exports toward Asian markets. "
    "China emerged as one of its largest buyers.\n"
)


def build_torture_folder(raw: Path, outside: Path) -> dict[str, str]:
    """Create bad and awkward files under ``raw``.

    Returns:
        Expected outcome per relative path: "document", "duplicate" or a reject reason.
    """
    expect: dict[str, str] = {}

    def put(rel: str, data: bytes, outcome: str) -> Path:
        p = raw / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        expect[rel] = outcome
        return p

    utf8 = ARTICLE.encode()
    put("good/utf8.txt", utf8, "document")
    put(
        "good/utf8_bom.txt",
        codecs.BOM_UTF8 + "BOM Article\n\nThe café reopened.".encode(),
        "document",
    )
    put(
        "good/utf16.txt",
        "UTF Sixteen\n\nKyiv said the talks résumé went well.".encode("utf-16"),
        "document",
    )
    put(
        "good/cp1252.txt",
        "Legacy Article\n\nThe minister’s “plan” costs €5 million — said officials.".encode(
            "cp1252"
        ),
        "document",
    )
    put(
        "good/crlf.txt",
        b"CRLF Article\r\n\r\nLines end in CRLF here.\r\nAnd here too.\r\n",
        "document",
    )
    put(
        "good/mixed.txt",
        b"Mixed Lines\n"
        + "A café in Paris.\n".encode()
        + "Le résumé du ministre.\n".encode("cp1252"),
        "document",
    )
    put(
        "good/zero_width.txt",
        "Zero\u200bWidth Text\n\nHidden\u200d joiners\x07 removed.".encode(),
        "document",
    )
    put("good/only_headings.txt", b"A Heading\n\nAnother Heading\n\nThird Heading\n", "document")
    put("good/name with spaces é.txt", b"Spaces In Names\n\nThe file name has spaces.", "document")
    put("good/new\nline.txt", b"Newline Name\n\nThe file name has a newline.", "document")
    put("good/long_paragraph.txt", ("word " * 60_000).encode(), "document")
    put("zdup/exact_copy.txt", utf8, "duplicate")
    put("zdup/crlf_copy.txt", utf8.replace(b"\n", b"\r\n"), "duplicate")
    put("bad/empty.txt", b"", "empty")
    put("bad/whitespace.txt", b"  \n\t\r\n  ", "empty")
    put("bad/binary.txt", b"\x00\x01\x02binary\x00data" * 20, "binary")
    put("bad/image.txt", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "binary")
    put("bad/gzip.txt", gzip.compress(utf8), "binary")
    put("bad/undecodable.txt", bytes(range(0x80, 0x100)) * 8, "undecodable")
    put("bad/too_large.txt", b"big file. " * 600_000, "too_large")
    put("bad/notes.md", b"# not a txt", "unsupported_type")
    put("bad/photo.jpg", b"\xff\xd8\xff\xe0", "unsupported_type")
    (raw / "bad" / "dir.txt").mkdir()
    expect["bad/dir.txt"] = "not_a_file"
    secret = outside / "secret.txt"
    secret.write_text("Outside the root.")
    os.symlink(secret, raw / "bad" / "escape.txt")
    expect["bad/escape.txt"] = "outside_root"
    os.symlink(raw / "bad" / "missing-target.txt", raw / "bad" / "broken.txt")
    expect["bad/broken.txt"] = "unreadable"
    os.mkfifo(raw / "bad" / "fifo.txt")
    expect["bad/fifo.txt"] = "not_a_file"
    sock_path = raw / "bad" / "sock.txt"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    sock.close()
    expect["bad/sock.txt"] = "not_a_file"
    locked = put("bad/unreadable.txt", b"Locked Article\n\nNo one may read this.", "unreadable")
    locked.chmod(0)
    (raw / ".hidden").write_text("editor swap file, ignored by design")
    return expect


class Appender:
    """Appends to a file in a background thread, so it changes while ingestion reads it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with open(self.path, "ab") as fh:
                fh.write(b"More text arrives. ")
            time.sleep(0.001)

    def __enter__(self) -> "Appender":
        self.path.write_bytes(b"Growing Article\n\nThe file is being written. ")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
