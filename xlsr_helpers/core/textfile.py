"""Reading the text files users give (protocols, keys, score files, CSVs, YAML) with errors that name them.

Every text input goes through ``read_text``: a folder, a missing file or bytes that are not UTF-8
give one clear line naming the file (and the line of the first bad byte) instead of a traceback.
A UTF-8 byte-order mark (Excel's "CSV UTF-8") is not data and is dropped, so it can never end up
inside the first speaker or file name. Lines are split on '\\n' only, as editors and ``grep -n``
count them: a U+2028 or a form feed inside a line does not shift the line numbers messages quote.
"""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from xlsr_helpers.core.errors import XlsrError, short, short_text

BOM = "\ufeff"


class TextFileError(XlsrError, ValueError):
    """A text input that cannot be read as UTF-8 text (or as the YAML it should hold)."""


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


def split_lines(text: str) -> list[str]:
    """Lines split on '\\n' only (``str.splitlines`` also splits on U+2028, U+0085, form feeds...),
    a Windows '\\r' at the end dropped; no empty last line for a final newline."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


def read_lines(path: str | Path) -> list[str]:
    """The file's lines (``split_lines``): line N of the list is line N in an editor."""
    return split_lines(read_text(path))


class _PlainLoader(yaml.SafeLoader):
    """Safe YAML that also refuses a key given twice (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        if not any(k.tag == "tag:yaml.org,2002:merge" for k, _ in node.value):  # '<<' overrides on purpose
            seen: set = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    twice = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # an unhashable key: the base class refuses it
                if twice:
                    raise yaml.constructor.ConstructorError(None, None, f"key {short(key)} is given twice",
                                                            key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path, error: type[XlsrError] = TextFileError):
    """The YAML document of a file, plain values only (no ``!!python`` tags); ``error`` names the file and
    line of a problem."""
    text = read_text(path)
    try:
        return yaml.load(text, Loader=_PlainLoader)  # a SafeLoader: plain values only
    except yaml.YAMLError as exc:
        raise error(f"{path}:{_yaml_line(text, exc)}: {_yaml_problem(exc)}") from None


def read_yaml_mapping(path: str | Path, what: str, error: type[XlsrError] = TextFileError) -> dict:
    """A YAML file that must hold a mapping with text keys (empty file: {}); ``what`` says what it is
    (e.g. 'a preset is a flat mapping of notebook parameters')."""
    data = read_yaml(path, error)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: {what}; it holds {_kind(data)}")
    bad = [k for k in data if not isinstance(k, str)]
    if bad:
        raise error(f"{path}: {what}; key {short(bad[0])} is not a name")
    return data


def _kind(value) -> str:
    return {list: "a list", str: "a single text value"}.get(type(value), f"a single value ({type(value).__name__})")


def _yaml_line(text: str, exc: yaml.YAMLError) -> int:
    """The 1-based line of a YAML error, counted on '\\n' (PyYAML also counts U+2028 and U+0085)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    index = mark.index if mark is not None else getattr(exc, "position", 0) or 0
    return text[:index].count("\n") + 1


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return f"character U+{code:04X} is not allowed in YAML"
    if problem and "constructor for the tag" in problem:
        tag = problem.split("'", 1)[-1].rstrip("'").replace("tag:yaml.org,2002:", "!!")
        return f"the tag {short_text(tag, 60)} is not allowed: give plain values (numbers, text, lists, mappings)"
    if isinstance(exc, yaml.constructor.ConstructorError) and problem and problem.endswith("given twice"):
        return problem
    return f"not valid YAML: {short_text(problem or type(exc).__name__, 200)}"
