"""core.rules: what a Rule accepts, converts and says, at and around each bound."""

import math

import pytest

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.core.rules import Rule, choice, integer, number, problems


@pytest.mark.parametrize("rule,value,convert,expected", [
    (integer(1, 10), 1, False, (True, 1)), (integer(1, 10), 10, False, (True, 10)),
    (integer(1, 10), 0, False, (False, 0)), (integer(1, 10), 11, False, (False, 11)),
    (integer(1, 10), 5.0, False, (False, 5.0)), (integer(1, 10), 5.0, True, (True, 5)),
    (integer(1, 10), "5", True, (True, 5)), (integer(1, 10), "5", False, (False, "5")),
    (integer(1, 10), "1e1", True, (False, "1e1")), (integer(1, 10), True, True, (False, True)),
    (integer(0, 2000), "1_000", True, (False, "1_000")), (number(0, 1), "1e-3", True, (True, 0.001)),
    (number(0, 1), 0, False, (False, 0)), (number(0, 1), 1, False, (True, 1.0)),
    (number(0, 1, low_open=False), 0, False, (True, 0.0)), (number(0, 1, high_open=True), 1, False, (False, 1)),
    (number(None, None), math.inf, False, (False, math.inf)), (number(None, None), math.nan, False, (False, math.nan)),
    (number(None, None), -1e300, False, (True, -1e300)), (number(0, 1, none=True), None, False, (True, None)),
    (number(0, 1, auto=True), "auto", False, (True, "auto")), (number(0, 1), "auto", True, (False, "auto")),
    (Rule("bool"), True, False, (True, True)), (Rule("bool"), 1, False, (False, 1)),
    (choice("a", "b"), "b", False, (True, "b")), (choice("a", "b"), "c", False, (False, "c")),
    (choice("a", none=True), None, False, (True, None)),
])
def test_what_a_rule_accepts(rule, value, convert, expected):
    ok, out = rule.accepts(value, convert)
    assert ok == expected[0]
    if ok:
        assert out == expected[1] and type(out) is type(expected[1])


@pytest.mark.parametrize("rule,words", [
    (integer(1, 10), "an integer in [1, 10]"), (integer(0, 2**32 - 1), "an integer in [0, 4294967295]"),
    (number(0, 1), "a number in (0, 1]"), (number(0, 1, low_open=False, high_open=True), "a number in [0, 1)"),
    (number(0.025, 60, low_open=False, auto=True), "a number in [0.025, 60] or 'auto'"),
    (number(None, None, none=True), "a number or None"), (Rule("float", 0, None, low_open=True), "a number > 0"),
    (Rule("int", None, 5), "an integer <= 5"), (choice("x", "y", none=True), "one of ['x', 'y'] or None"),
    (Rule("bool"), "True or False"),
])
def test_a_rule_says_what_it_accepts(rule, words):
    assert rule.describe() == words


def test_check_names_the_setting_and_problems_lists_every_bad_one():
    with pytest.raises(ConfigError, match=r"^epochs=0 \(expected an integer in \[1, 10\]\)$"):
        integer(1, 10).check("epochs", 0)
    rules = {"a": integer(1, 10), "b": choice("x"), "c": number(0, 1)}
    out, found = problems(rules, {"a": "3", "b": "y", "c": 2, "free": object}, convert=True)
    assert out == {"a": 3, "free": object}
    assert found == ["b='y' (expected one of ['x'])", "c=2 (expected a number in (0, 1])"]
