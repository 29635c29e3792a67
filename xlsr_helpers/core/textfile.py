"""Reading the text files users give (protocols, keys, score files, CSVs) with errors that name them.

Every text input goes through ``read_text``: a folder, a missing file or bytes that are not UTF-8
give one clear line naming the file (and the line of the first bad byte) instead of a traceback.
A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not data and is dropped, so it can never end up
inside the first speaker or file name.
"""

from __future__ import annotations

import io
from pathlib import Path

from xlsr_helpers.core.errors import XlsrError

BOM = "\ufeff"


class TextFileError(XlsrError, ValueError):
    """A text input that cannot be read as UTF-8 text."""


def read_text(path: str | Path) -> str:
    """The file's text (UTF-8, BOM dropped); ``TextFileError`` naming the file otherwise."""
    p = Path(path)
    if p.is_dir():
        raise TextFileError(f"{p} is a folder; expected a text file")
    if not p.is_file():
        raise TextFileError(f"{p} does not exist")
    data = p.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise TextFileError(f"{p}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None
    return text[1:] if text.startswith(BOM) else text


def open_text(path: str | Path) -> io.StringIO:
    """``read_text`` as a file object (for ``csv`` and ``pandas``)."""
    return io.StringIO(read_text(path), newline="")


def read_lines(path: str | Path) -> list[str]:
    return read_text(path).splitlines()
