"""Bytes to normalised text: refuse binaries and undecodable files rather than mangle them."""

from __future__ import annotations

import codecs
import unicodedata
from typing import Final

_BINARY_SIGNATURES: Final = (
    (b"\x1f\x8b", "gzip compressed data"),
    (b"PK\x03\x04", "zip archive"),
    (b"%PDF", "PDF document"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"BZh", "bzip2 compressed data"),
    (b"\xfd7zXZ", "xz compressed data"),
    (b"7z\xbc\xaf", "7-zip archive"),
    (b"\x7fELF", "ELF executable"),
    (b"\x28\xb5\x2f\xfd", "zstd compressed data"),
)
_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


class Rejected(Exception):
    """A file that cannot be a document: ``reason`` is a code of ``REJECT_REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        """Keep the reason code and a human-readable detail."""
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def decode_bytes(
    data: bytes, legacy_encodings: tuple[str, ...] = ("cp1252", "latin_1")
) -> tuple[str, str]:
    """Decode article bytes, refusing rather than mangling.

    Order: byte-order mark (UTF-8/16/32), strict UTF-8, then a detector (charset-normalizer)
    restricted to ``legacy_encodings``. Files mixing UTF-8 lines with legacy lines are decoded
    line by line, each line with the encoding it is valid in.

    Returns:
        ``(encoding, text)``.

    Raises:
        Rejected: ``binary`` or ``undecodable``.
    """
    for signature, what in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise Rejected("binary", what)
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return name, data[len(bom) :].decode(name.removesuffix("-sig"))
            except UnicodeDecodeError as err:
                raise Rejected("undecodable", f"invalid {name} after its BOM: {err}") from err
    nuls = data.count(0)
    if nuls:
        utf16 = _utf16_without_bom(data)
        if utf16 is not None:
            return utf16[0], _refuse_control_heavy(utf16[1])
        raise Rejected("binary", f"{nuls} NUL bytes and no UTF-16/32 BOM")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8", _refuse_control_heavy(text)
    return _decode_legacy(data, legacy_encodings)


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """``(encoding, text)`` if ``data`` is UTF-16 text saved without a byte-order mark.

    Text in a Latin script has a NUL in every other byte (the high byte of each code unit): in
    the odd positions for little-endian, the even ones for big-endian, and almost none on the
    other side. Binary data does not keep that pattern, nor decode without NUL characters.
    """
    n = len(data) // 2
    if n < 8 or len(data) % 2:
        return None
    even, odd = data[0::2].count(0) / n, data[1::2].count(0) / n
    if odd > 0.3 and even < 0.01:
        encoding = "utf-16-le"
    elif even > 0.3 and odd < 0.01:
        encoding = "utf-16-be"
    else:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else (encoding, text)


def _decode_legacy(data: bytes, legacy: tuple[str, ...]) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    lines = data.split(b"\n")
    utf8_lines: dict[int, str] = {}
    bad: list[bytes] = []
    for i, line in enumerate(lines):
        try:
            decoded = line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(line)
        else:
            if not line.isascii():
                utf8_lines[i] = decoded
    best = from_bytes(b"\n".join(bad), cp_isolation=list(legacy)).best()
    if best is None:
        raise Rejected(
            "undecodable", f"not UTF-8 and no accepted legacy encoding fits ({', '.join(legacy)})"
        )
    enc = codecs.lookup(best.encoding).name
    try:
        if not utf8_lines:
            return enc, _refuse_control_heavy(data.decode(enc))
        parts = [utf8_lines.get(i) or line.decode(enc) for i, line in enumerate(lines)]
    except UnicodeDecodeError as err:
        raise Rejected("undecodable", f"detected {enc} but it does not decode: {err}") from err
    return f"utf-8+{enc}", _refuse_control_heavy("\n".join(parts))


def _refuse_control_heavy(text: str) -> str:
    # Text in a wrong single-byte codec or a binary blob decodes "successfully" but is full of
    # control characters; real articles have almost none.
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in "\n\r\t\f")
    if controls > max(8, 0.05 * len(text)):
        raise Rejected("binary", f"{controls} control characters in {len(text)}")
    return text


_DROP: Final = {
    **{c: None for c in range(0x20) if chr(c) not in "\n\t\r\x0b\x0c"},
    0x7F: None,
    **{c: None for c in range(0x80, 0xA0) if c != 0x85},
    0x200B: None,  # zero-width space
    0x200C: None,  # zero-width non-joiner
    0x200D: None,  # zero-width joiner
    0x2060: None,  # word joiner
    0xFEFF: None,  # BOM / zero-width no-break space
    0x00AD: None,  # soft hyphen
    # Bidirectional marks, embeddings, overrides and isolates: they make a claim display other
    # than its bytes read ("Trojan Source"), and one invisible mark defeats duplicate detection.
    0x061C: None,
    0x200E: None,
    0x200F: None,
    **{c: None for c in range(0x202A, 0x202F)},
    **{c: None for c in range(0x2066, 0x206A)},
    0x0B: "\n",
    0x0C: "\n",
    0x85: "\n",
    0x2028: "\n",
    0x2029: "\n",
}


def normalize_text(text: str) -> str:
    r"""Normalise text so that offsets into the result are the reference for all tables.

    Newlines become ``\\n``, the text is Unicode NFC, zero-width, bidirectional-control and
    control characters (other than newline and tab) are removed, and trailing whitespace is
    dropped.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", text).translate(_DROP)
    return text.rstrip()
