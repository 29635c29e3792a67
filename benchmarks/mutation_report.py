"""Kill rate per module from mutmut's results (run `make mutate` first).

Prints killed / total per mutated module and lists the survivors; EQUIVALENT below names the
surviving mutants judged equivalent (no test can tell them apart), each with its reason.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict

# mutant name -> why it cannot be killed (behaviour identical to the original)
EQUIVALENT: dict[str, str] = {}


def results() -> list[tuple[str, str]]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], capture_output=True, text=True)
    pairs = re.findall(r"^\s*([\w.]+__mutmut_\d+): (\w[\w ]*)$", out.stdout, re.M)
    if not pairs:
        sys.exit(f"no mutmut results found; run `make mutate` first\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return pairs


def main() -> int:
    per_module: dict[str, Counter] = defaultdict(Counter)
    survivors: dict[str, list[str]] = defaultdict(list)
    for name, status in results():
        module = name.split(".x_")[0].split(".xǁ")[0].rsplit(".", 1)[0] if ".x" in name else name.split("__")[0]
        per_module[module][status] += 1
        if status == "survived" and name not in EQUIVALENT:
            survivors[module].append(name)
    print(f"{'module':<32} {'killed':>7} {'total':>6} {'rate':>7}  (equivalent survivors count as killed)")
    for module, c in sorted(per_module.items()):
        equiv = sum(1 for n in EQUIVALENT if n.startswith(module))
        killed = c["killed"] + c["timeout"] + equiv
        total = sum(c.values()) - c["skipped"] - c["not checked"]
        print(f"{module:<32} {killed:>7} {total:>6} {100 * killed / max(total, 1):>6.1f}%")
    for module, names in sorted(survivors.items()):
        print(f"\nsurvivors in {module} ({len(names)}):")
        print("\n".join(f"  {n}" for n in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
