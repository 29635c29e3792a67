"""Compare two `pip freeze` outputs: the Kaggle install must not change any package of the image.

Usage: python kaggle/compare_freezes.py BEFORE AFTER   (exit 1, listing them, when a version changed)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def parse_freeze(text: str) -> dict[str, str]:
    """name (normalised) -> version (or the direct reference) for each line of `pip freeze`."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-e ")):
            continue
        name, sep, version = line.partition("==")
        if not sep:
            name, _, version = line.partition(" @ ")
        out[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return out


def changed_packages(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Packages of ``before`` whose version differs (or that disappeared) in ``after``."""
    return [f"{n}: {v} -> {after.get(n, 'removed')}" for n, v in sorted(before.items()) if after.get(n) != v]


def main(argv: list[str]) -> int:
    before, after = (parse_freeze(Path(p).read_text()) for p in argv[1:3])
    changed = changed_packages(before, after)
    added = sorted(set(after) - set(before))
    print(f"Kaggle install: {len(added)} package(s) added {added}; {len(changed)} of the image's changed")
    for line in changed:
        print(f"  CHANGED {line}")
    return 1 if changed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
