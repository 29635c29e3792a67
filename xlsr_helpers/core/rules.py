"""One way to declare and check a setting: a ``Rule`` says what a value may be, and says it in words.

Notebook parameters (``pipeline.params``), training fields (``train.config``) and scoring settings
(``evaluate.scoring``) declare their values with these rules, so a range or a choice list is written
once. Every number has an upper bound: a value far outside any real run (``segment_seconds=1e9``) is
refused when it is read, not after it has tried to allocate terabytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from xlsr_helpers.core.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """What one setting accepts. ``kind``: int, float, bool or choice; numbers lie in ``[low, high]``
    (``low_open``/``high_open`` exclude the bound); ``none``/``auto`` also accept None / 'auto'."""

    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    none: bool = False
    auto: bool = False

    def describe(self) -> str:
        """The accepted values in words, as error messages quote them."""
        if self.kind == "bool":
            text = "True or False"
        elif self.kind == "choice":
            text = f"one of {list(self.choices)}"
        else:
            text = ("an integer" if self.kind == "int" else "a number") + self._range()
        extras = [w for w, on in (("'auto'", self.auto), ("None", self.none)) if on]
        return " or ".join([text, *extras])

    def _range(self) -> str:
        if self.low is None and self.high is None:
            return ""
        low, high = _text(self.low), _text(self.high)
        if self.high is None:
            return f" {'>' if self.low_open else '>='} {low}"
        if self.low is None:
            return f" {'<' if self.high_open else '<='} {high}"
        return f" in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"

    def check(self, name: str, value, convert: bool = False):
        """``value`` as this rule's type, or ``ConfigError`` naming ``name``. ``convert``: numbers written
        as text (YAML reads ``1e-3`` as a string) are read as numbers."""
        ok, out = self.accepts(value, convert)
        if not ok:
            raise ConfigError(f"{name}={value!r} (expected {self.describe()})")
        return out

    def accepts(self, value, convert: bool = False) -> tuple[bool, object]:
        """(whether ``value`` fits, the value as this rule's type)."""
        if self.none and value is None:
            return True, None
        if self.auto and value == "auto":
            return True, "auto"
        if self.kind == "bool":
            return isinstance(value, bool), value
        if self.kind == "choice":
            return value in self.choices, value
        v = _as_number(value, self.kind) if convert and isinstance(value, str) else value
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
            return False, value
        if self.kind == "int":
            if not (isinstance(v, int) or (convert and float(v).is_integer())):
                return False, value
            v = int(v)
        return self._in_range(v), (float(v) if self.kind == "float" else v)

    def _in_range(self, v: float) -> bool:
        above = self.low is None or (v > self.low if self.low_open else v >= self.low)
        below = self.high is None or (v < self.high if self.high_open else v <= self.high)
        return above and below


def _text(bound: float | None) -> str:
    """A bound as messages write it: integers in full (4294967295, not 4.29e+09), others shortest."""
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


def _as_number(text: str, kind: str):
    """Plain decimal or scientific spellings only: '1_000' (Python's digit grouping) is not a number here."""
    if "_" in text:
        return text
    try:
        return int(text) if kind == "int" else float(text)
    except ValueError:
        return text


def integer(low: int, high: int, **kw) -> Rule:
    return Rule("int", low, high, **kw)


def number(low: float | None, high: float | None, low_open: bool = True, **kw) -> Rule:
    return Rule("float", low, high, low_open=low_open, **kw)


def choice(*choices, **kw) -> Rule:
    return Rule("choice", choices=tuple(choices), **kw)


def problems(rules: dict[str, Rule], values: dict, convert: bool = False) -> tuple[dict, list[str]]:
    """Check every value that has a rule; return the converted values and one line per refused one."""
    out, found = {}, []
    for name, value in values.items():
        rule = rules.get(name)
        if rule is None:
            out[name] = value
            continue
        try:
            out[name] = rule.check(name, value, convert)
        except ConfigError as exc:
            found.append(str(exc))
    return out, found
