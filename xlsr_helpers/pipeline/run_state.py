"""Which notebooks of a run folder finished, with which parameters; earlier runs to resume from."""


from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import yaml

from xlsr_helpers.core.errors import PipelineError
from xlsr_helpers.core.written import WRITTEN, note_written
from xlsr_helpers.pipeline.notebooks import NOTEBOOKS
from xlsr_helpers.pipeline.runlock import LOCK_FILE
from xlsr_helpers.runtime.kaggle_env import glob_input, in_kaggle_output, kaggle_input
from xlsr_helpers.train.state import RUN_RECORD

RUN_STATE = "run_state.yaml"  # notebooks that finished, with their parameters (for --resume-from)


PREVIOUS_RUN_PATTERNS = ["*/xlsr-run", "*", "notebooks/*/*/xlsr-run", "*/*/xlsr-run"]


def _state(run_dir: Path) -> dict:
    path = run_dir / RUN_STATE
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


def mark_finished(run_dir: Path, nb: str, parameters: dict) -> None:
    state = _state(run_dir)
    state[nb] = {"parameters": {k: v for k, v in parameters.items() if k != "run_dir"},
                 "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    (run_dir / RUN_STATE).write_text(yaml.safe_dump(state, sort_keys=False))


def forget_finished(run_dir: Path, nb: str) -> None:
    """A notebook about to run, and every one after it, is no longer finished."""
    state = _state(run_dir)
    later = NOTEBOOKS[NOTEBOOKS.index(nb):]
    if any(n in state for n in later):
        (run_dir / RUN_STATE).write_text(yaml.safe_dump({k: v for k, v in state.items() if k not in later},
                                                        sort_keys=False))


def recorded_parameters(run_dir: Path) -> dict[str, dict]:
    """The parameters each finished notebook ran with (``run_dir`` left out)."""
    return {nb: entry.get("parameters", {}) for nb, entry in _state(run_dir).items() if isinstance(entry, dict)}


def check_overrides_used(overrides: dict, resolved: dict[str, dict], chosen: list[str], run_dir: Path) -> None:
    """A value given on the command line that no notebook of this run reads, and that differs from
    what the notebooks reading it ran with, would be recorded as if it had been used: refused."""
    recorded = recorded_parameters(run_dir)
    unused = []
    for name, value in overrides.items():
        readers = [nb for nb in NOTEBOOKS if name in resolved[nb]]
        if name == "run_dir" or any(nb in chosen for nb in readers):
            continue
        ran = {nb: recorded[nb][name] for nb in readers if name in recorded.get(nb, {})}
        if any(nb not in ran or ran[nb] != resolved[nb][name] for nb in readers):
            was = "; ".join(f"{nb} ran with {name}={v!r}" for nb, v in ran.items()) or "no record of its run"
            unused.append(f"{name}={value!r} is read only by {', '.join(readers)} ({was})")
    if unused:
        raise PipelineError(f"{'; '.join(unused)}: this run does not run {'them' if len(unused) > 1 else 'it'} "
                            f"(it runs {', '.join(chosen) or 'no notebook'}); start from the notebook that reads "
                            "a value, or leave it out")


def run_record(preset: str, overrides: dict, seeds: list[int] | None, resolved: dict[str, dict], chosen: list[str],
               run_dir: Path) -> dict:
    """``params.yaml``: the parameters of the notebooks this run executes, and for the others those
    they finished with earlier (a notebook with no record is left out): what was done, not asked."""
    recorded = recorded_parameters(run_dir)
    notebooks = {}
    for nb in NOTEBOOKS:
        if nb in chosen:
            notebooks[nb] = resolved[nb]
        elif nb in recorded:
            notebooks[nb] = {**recorded[nb], "run_dir": str(run_dir)}
    return {"preset": preset, "overrides": overrides, "seeds": seeds, "notebooks_run": list(chosen),
            "notebooks": notebooks}


def unfinished_notebooks(run_dir: Path, resolved: dict[str, dict]) -> list[str]:
    """From the first notebook that did not finish (or finished with other parameters) to the end."""
    state = _state(run_dir)
    for i, nb in enumerate(NOTEBOOKS):
        done = state.get(nb, {}).get("parameters")
        if done != {k: v for k, v in resolved[nb].items() if k != "run_dir"}:
            return NOTEBOOKS[i:]
    return []


def find_previous_run(spec: str | Path) -> Path | None:
    """A previous run folder: the given path, or ('auto') the newest one under the Kaggle input root
    (an earlier kernel version's output added as input); None when 'auto' finds none."""
    if str(spec) != "auto":
        p = Path(spec).expanduser().resolve()
        if not (p / RUN_STATE).is_file() and not (p / "params.yaml").is_file():
            raise PipelineError(f"--resume-from {p}: not a run folder (no {RUN_STATE} or params.yaml)")
        return p
    found = [p for p in glob_input(PREVIOUS_RUN_PATTERNS) if (p / RUN_STATE).is_file()]
    if not found:
        print(f"[xlsr run] no earlier run under {kaggle_input()}: starting a new run", file=sys.stderr)
        return None
    newest = max(found, key=lambda p: (p / RUN_STATE).stat().st_mtime)
    print(f"[xlsr run] resuming from {newest}" + (f" (newest of {len(found)})" if len(found) > 1 else ""),
          file=sys.stderr)
    return newest


def _not_copied(into_kaggle_output: bool):
    """What copying an earlier run leaves out: its lock, unfinished writes and, into Kaggle's kept
    output, a stage folder's cache (a stage there reads its caches from the scratch disk)."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        left = set(shutil.ignore_patterns("*.tmp*", LOCK_FILE)(folder, names))
        if into_kaggle_output and RUN_RECORD in names:
            left.add("cache")
        return left
    return ignore


def copy_previous_run(source: Path, run_dir: Path) -> None:
    """Copy a previous run into a new run folder (once; a folder that holds a run is continued as it
    is) and point its manifests at the copied demo data when they lived inside the old folder."""
    if (run_dir / RUN_STATE).exists() or (run_dir / "params.yaml").exists():
        print(f"[xlsr run] {run_dir} already holds a run: continuing it (not copying {source})", file=sys.stderr)
        return
    if source.resolve() == run_dir.resolve():
        return
    # the earlier run's lock (a kernel killed mid-run leaves it) is not this run's; ours stays as it is
    shutil.copytree(source, run_dir, dirs_exist_ok=True, ignore=_not_copied(in_kaggle_output(run_dir)))
    copied = [p for p in run_dir.rglob("*") if p.name not in (LOCK_FILE, WRITTEN)]
    for p in [run_dir, *copied]:  # copies of read-only inputs (/kaggle/input) must be writable
        p.chmod(p.stat().st_mode | 0o200)
    note_written(run_dir, *copied)  # this run wrote these copies: clearing may remove them as its own
    old = yaml.safe_load((source / "params.yaml").read_text()).get("notebooks", {}).get(NOTEBOOKS[0], {}) \
        if (source / "params.yaml").exists() else {}
    old_dir = old.get("run_dir")
    if old_dir and Path(old_dir).resolve() != run_dir:
        for csv in (run_dir / "manifests").glob("*.csv"):
            text = csv.read_text()
            if str(old_dir) + "/" in text and not Path(old_dir).exists():
                csv.write_text(text.replace(str(old_dir) + "/", str(run_dir) + "/"))
    print(f"[xlsr run] copied {source} -> {run_dir}", file=sys.stderr)
