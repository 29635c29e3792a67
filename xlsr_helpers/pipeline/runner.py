"""Run the notebook chain with papermill: presets, parameter checks, clear failures, resume.

``xlsr run --preset demo`` executes ``notebooks/01..04`` in order, writing executed copies to
``RUN_DIR/notebooks/`` and the resolved parameters to ``RUN_DIR/params.yaml``. A parameter that no
notebook declares is an error before anything runs (papermill itself only warns).
"""

from __future__ import annotations

import ast
import json
import os
import sys
import time
from pathlib import Path

import yaml

from xlsr_helpers.core.errors import PipelineError
from xlsr_helpers.core.outputs import check_output_folder
from xlsr_helpers.core.resources import CHECKOUT, NOTEBOOK_DIR
from xlsr_helpers.core.written import claim, note_written
from xlsr_helpers.data.corpora import parse_corpora
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.evaluate.results import asv_reference
from xlsr_helpers.evaluate.seeds import SEEDS_DIR, clear_summary, prepare_seed_dir, results_summary, seed_dir, summarize
from xlsr_helpers.pipeline.notebooks import (
    NOTEBOOKS,
    REQUIRED_BEFORE,
    load_preset,
    notebook_parameters,
    select_notebooks,
)
from xlsr_helpers.pipeline.params import absolute_paths, check_parameters
from xlsr_helpers.pipeline.preflight import check_before_start
from xlsr_helpers.pipeline.run_state import (
    RUN_STATE,
    check_overrides_used,
    copy_previous_run,
    find_previous_run,
    forget_finished,
    mark_finished,
    run_record,
    unfinished_notebooks,
)
from xlsr_helpers.pipeline.runfolder import check_run_folder, clear_results, resolve_corpora
from xlsr_helpers.pipeline.runlock import LOCK_FILE, run_folder_lock
from xlsr_helpers.runtime.kaggle_env import folder_bytes, in_kaggle_output, kaggle_working, kept_note, on_kaggle

QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]  # no "running over TCP without encryption" per notebook


def resolve_parameters(preset: dict, overrides: dict, run_dir: Path) -> dict[str, dict]:
    """Per-notebook parameters, checked: an unknown key or a value of the wrong type or range (in the
    preset or an override) is an error before anything runs."""
    merged = check_parameters({**preset, **overrides, "run_dir": str(run_dir)})
    declared = {nb: notebook_parameters(nb) for nb in NOTEBOOKS}
    known = set().union(*declared.values())
    unknown = sorted(set(merged) - known)
    if unknown:
        raise PipelineError(f"parameter(s) {unknown} are declared by no notebook; known parameters: {sorted(known)}")
    return {nb: {k: v for k, v in merged.items() if k in names} for nb, names in declared.items()}


def effective_parameters(resolved: dict[str, dict]) -> dict:
    """What the notebooks will hold: each notebook's declared defaults under the resolved values."""
    values = {}
    for nb, given in resolved.items():
        values |= {k: ast.literal_eval(v) for k, v in notebook_parameters(nb).items()} | given
    return values


def chain_run_dir(given: str | Path | None, preset: str) -> Path:
    """``--run-dir``, else the ``run_dir`` parameter; ``auto``: ``/kaggle/working/xlsr-run`` on
    Kaggle, ``runs/<preset>`` elsewhere."""
    if given is None or str(given) == "auto":
        given = kaggle_working() / "xlsr-run" if on_kaggle() else Path("runs") / Path(preset).stem
    run_dir = Path(given).expanduser().resolve()
    check_output_folder(run_dir, "run folder")  # a file, a read-only folder: refused before any notebook runs
    return run_dir


def prepare(preset: str, overrides: dict | None, run_dir: str | Path | None) -> tuple[Path, dict[str, dict], dict]:
    """The run folder, each notebook's checked parameters and the overrides as given (paths made
    absolute): everything checked before any work, values and what they point at."""
    params = absolute_paths(load_preset(preset), Path.cwd())
    overrides = absolute_paths(dict(overrides or {}), Path.cwd())
    run_dir = chain_run_dir(run_dir or overrides.get("run_dir") or params.get("run_dir"), preset)
    resolved = resolve_parameters(params, overrides, run_dir)
    check_before_start(effective_parameters(resolved))
    return run_dir, resolved, overrides


def estimate_run(preset: str = "demo", overrides: dict | None = None, run_dir: str | Path | None = None) -> str:
    """``xlsr run --estimate``: the caches, their disks and each stage's time, before anything runs."""
    from xlsr_helpers.pipeline.estimate import estimate_stages, estimate_text  # torch: only when asked
    run_dir, resolved, _ = prepare(preset, overrides, run_dir)
    return estimate_text(estimate_stages(effective_parameters(resolved), run_dir))


def run_pipeline(preset: str = "demo", overrides: dict | None = None, run_dir: str | Path | None = None,
                 start_from: str | None = None, kernel_name: str = "python3", progress_bar: bool = True,
                 only: list[str] | None = None, resume_from: str | Path | None = None,
                 seeds: list[int] | None = None) -> int:
    """Execute the notebooks in order; raise ``PipelineError`` naming the notebook and cell on failure.

    ``resume_from``: a previous run folder (e.g. an earlier Kaggle kernel's output under
    ``/kaggle/input``, read-only) or ``'auto'`` to look for one there; what it finished is copied in
    and the chain continues at the first unfinished notebook (and inside it at the last checkpoint).
    ``seeds``: notebooks 03 and 04 once per seed (``seeds`` module), then the seeds' summary.
    The run folder must be new, empty or a run folder; the run holds its lock throughout, so a second
    run on the same folder is refused before it writes anything.
    """
    run_dir, resolved, overrides = prepare(preset, overrides, run_dir)
    if resume_from is not None and (start_from or only):
        raise PipelineError("--resume-from continues where the earlier run stopped: use it without --from/--only")
    if seeds and only:
        raise PipelineError("--seeds runs notebooks 03 and 04 once per seed: use it without --only")
    check_run_folder(run_dir)  # a user's folder is refused before anything is written into it
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with run_folder_lock(run_dir):  # one run per folder: a second one is refused, not interleaved
            return _run_locked(run_dir, preset, overrides, resolved, start_from, only, resume_from, seeds,
                               kernel_name, progress_bar)
    finally:
        if created and not any(run_dir.iterdir()):  # refused before writing anything: leave no trace
            run_dir.rmdir()


def _run_locked(run_dir: Path, preset: str, overrides: dict, resolved: dict[str, dict], start_from: str | None,
                only: list[str] | None, resume_from, seeds: list[int] | None, kernel_name: str,
                progress_bar: bool) -> int:
    if resume_from is not None:
        source = find_previous_run(resume_from)
        if source is not None:
            copy_previous_run(source, run_dir)
        chosen = unfinished_notebooks(run_dir, resolved)
    else:
        chosen = select_notebooks(start_from, only)
    if seeds and resolved["04_eval_eer"].get("detector", "auto") != "auto":
        raise PipelineError("--seeds scores each seed's own stage-2 detector: use it without detector=<folder>")
    check_inputs_exist(run_dir, chosen)
    check_corpus_splits(resolved, chosen)
    check_overrides_used(overrides, resolved, chosen, run_dir)
    if chosen:
        clear_results(run_dir)  # metrics and scores are recomputed by 04 from what this run changes
    (run_dir / "params.yaml").write_text(yaml.safe_dump(
        run_record(preset, overrides, seeds, resolved, chosen, run_dir), sort_keys=False))
    note_written(run_dir, run_dir / "params.yaml")  # the runner's own bookkeeping, in a folder holding a run
    if not chosen:
        print(f"[xlsr run] every notebook already finished in {run_dir} with these parameters", file=sys.stderr)
        print(summary(run_dir, 0.0))
        return 0
    t0 = time.time()
    if seeds:
        return run_seeds(run_dir, resolved, chosen, seeds, kernel_name, progress_bar, t0)
    for nb in chosen:
        _run_one(run_dir, nb, resolved[nb], kernel_name, progress_bar)
    metrics = run_dir / "metrics.json"
    if metrics.exists() and chosen == NOTEBOOKS:  # record the whole chain's wall time next to the metrics
        m = json.loads(metrics.read_text())
        m["chain_seconds"] = round(time.time() - t0, 1)
        claim(run_dir, metrics).write_text(json.dumps(m, indent=2))
    print(summary(run_dir, time.time() - t0))
    return 0


PER_SEED = ("03_stage2_finetune", "04_eval_eer")  # what `--seeds` runs once per seed


def _run_one(run_dir: Path, nb: str, parameters: dict, kernel_name: str, progress_bar: bool, label: str = "") -> None:
    forget_finished(run_dir, nb)
    print(f"[xlsr run] {nb}{label} ...", file=sys.stderr, flush=True)
    t = time.time()
    executed = run_dir / "notebooks" / f"{nb}.ipynb"
    try:
        execute_notebook(NOTEBOOK_DIR / f"{nb}.ipynb", executed, parameters, kernel_name, progress_bar)
    finally:  # the partial copy of a failed notebook is the runner's too
        note_written(run_dir, *[p for p in (executed.parent, executed) if p.exists()])
    mark_finished(run_dir, nb, parameters)
    note_written(run_dir, run_dir / RUN_STATE)
    print(f"[xlsr run] {nb}{label} done in {time.time() - t:.0f} s", file=sys.stderr, flush=True)


def run_seeds(run_dir: Path, resolved: dict[str, dict], chosen: list[str], seeds: list[int], kernel_name: str,
              progress_bar: bool, t0: float) -> int:
    """The chosen shared notebooks once, the chosen ones of 03 and 04 per seed in ``seeds/seed-<n>``,
    then the summary table, figure and fused scores."""
    from xlsr_helpers.evaluate import plots  # matplotlib, IPython (1.5 s): only when the summary figure is drawn
    per_seed = [nb for nb in PER_SEED if nb in chosen]
    if "03_stage2_finetune" not in per_seed:  # --from 04: every seed's stage 2 must exist already
        lacking = [s for s in seeds if not (seed_dir(run_dir, s) / "stage2" / "detector" / "config.json").is_file()]
        if lacking:
            raise PipelineError(f"--seeds {','.join(map(str, seeds))} --from 04: no stage-2 detector for seed(s) "
                                f"{lacking} in {run_dir / SEEDS_DIR}; start from 03 for them")
    clear_summary(run_dir)  # before any work: a file in its way is refused now, not after training
    for nb in chosen:
        if nb not in PER_SEED:
            _run_one(run_dir, nb, resolved[nb], kernel_name, progress_bar)
    declared = {nb: notebook_parameters(nb) for nb in per_seed}
    for seed in seeds:
        folder = prepare_seed_dir(run_dir, seed)
        for nb in per_seed:
            params = {**resolved[nb], "run_dir": str(folder), "seed": seed}
            # one cache for all seeds; in Kaggle's kept output 'auto' already shares one on the scratch disk
            if "cache_dir" in declared[nb] and params.get("cache_dir", "auto") == "auto" and not in_kaggle_output(run_dir):
                params["cache_dir"] = str(run_dir / SEEDS_DIR / "cache")
            _run_one(folder, nb, params, kernel_name, progress_bar, f" (seed {seed})")
    defaults = {k: ast.literal_eval(v) for k, v in notebook_parameters("04_eval_eer").items()
                if k in ("dataset", "data_root", "asv_scores", "phase", "bootstrap", "seed")}
    ev = {**defaults, **resolved["04_eval_eer"]}
    specs, roots = resolve_corpora(ev["dataset"], ev["data_root"], run_dir, make=False)
    one = len(specs) == 1  # several corpora pool their trials: no one ASV system, so no min t-DCF (as in 04)
    table = summarize(run_dir, seeds, lambda split: asv_reference(ev["dataset"], roots[0], split, ev["asv_scores"])
                      if one else None,
                      ev["phase"])
    split = "eval" if "eval" in set(table.split) else table.split.iloc[-1]
    plots.save_figure(plots.seed_summary(table, split), claim(run_dir, run_dir / SEEDS_DIR / "seeds.png"))
    tables = [(seed_dir(run_dir, s) / "results" / "table.json").is_file() for s in seeds]
    if any(tables):  # each seed's 04 writes one; a seed without it is named by results_summary
        corpora = results_summary(run_dir, seeds, ev["phase"], ev["bootstrap"], ev["seed"])  # mean +- sd, fused
        print(f"\nper corpus ({run_dir / SEEDS_DIR / 'results_table.md'}):\n"
              f"{corpora.to_string(index=False, float_format=lambda v: f'{v:.4f}')}")
    else:
        print("[xlsr run] no seed's 04 wrote a results table (results/table.json): no per-corpus summary", file=sys.stderr)
    print(f"\nfinished in {time.time() - t0:.0f} s; {len(seeds)} seeds in {run_dir / SEEDS_DIR}\n"
          f"{table.to_string(index=False, float_format=lambda v: f'{v:.4f}')}")
    return 0


def check_inputs_exist(run_dir: Path, chosen: list[str]) -> None:
    """What a notebook needs must exist already or come from one that runs before it."""
    produced_here: set[str] = set()
    for nb in chosen:
        needs = [p for p in REQUIRED_BEFORE.get(nb, []) if not (run_dir / p).exists()]
        earlier = NOTEBOOKS[:NOTEBOOKS.index(nb)]
        if needs and not produced_here & set(earlier):
            raise PipelineError(f"{nb}: {run_dir} lacks {needs}; run the earlier notebooks first")
        produced_here.add(nb)


TRAINS_ON = ("train", "dev")  # the manifests 02 and 03 train on, and 04 checks its own detector against


def check_corpus_splits(resolved: dict[str, dict], chosen: list[str]) -> None:
    """A corpus that 01 turns into no train and dev manifests (a folder corpus, In-the-Wild) cannot
    feed 02-03, nor 04 scoring this run's detector: said before 01 runs, with what it can do."""
    if NOTEBOOKS[0] not in chosen:
        return
    dataset = resolved[NOTEBOOKS[0]].get("dataset") or ast.literal_eval(notebook_parameters(NOTEBOOKS[0])["dataset"])
    specs = parse_corpora(dataset)
    splits = list(dict.fromkeys(s for spec in specs for s in load_descriptor(spec.descriptor)["splits"]))
    detector = resolved["04_eval_eer"].get("detector", "auto")
    needs = [nb for nb in chosen if nb in ("02_stage1_head", "03_stage2_finetune")
             or (nb == "04_eval_eer" and detector == "auto")]
    if needs and not set(TRAINS_ON) <= set(splits):
        raise PipelineError(
            f"dataset={dataset!r} gives the split(s) {splits} only, and {', '.join(needs)} need train and dev "
            f"manifests (04 with detector='auto' checks the detector against them). Such a corpus is scored by a "
            f"trained detector: xlsr run --only 01,04 --set dataset={dataset} --set data_root=<folder> "
            f"--set detector=<detector folder> (or xlsr score <detector folder> <audio folder>)")


def execute_notebook(src: Path, out: Path, parameters: dict, kernel_name: str = "python3",
                     progress_bar: bool = True) -> None:
    """One notebook through papermill, from the checkout (or the run folder when installed), with a quiet kernel."""
    import papermill as pm  # papermill starts slowly: only when a notebook runs
    out.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's start-up notes on Python 3.12
    try:
        pm.execute_notebook(str(src), str(out), parameters=parameters, kernel_name=kernel_name,
                            progress_bar=progress_bar, cwd=str(CHECKOUT or out.parent.parent), extra_arguments=QUIET_KERNEL)
    except pm.PapermillExecutionError as exc:
        raise PipelineError(
            f"notebook {src.stem} failed in cell {exc.cell_index} (execution {exc.exec_count}): "
            f"{exc.ename}: {exc.evalue}\npartial executed copy: {out}") from None


# ----------------------------------------------------------------------------- run state


def summary(run_dir: Path, seconds: float) -> str:
    """Where everything landed: what exists, and the detector that metrics.json was computed with."""
    lines = [f"\nfinished in {seconds:.0f} s; outputs in {run_dir}"]
    metrics, trained = run_dir / "metrics.json", run_dir / "stage2" / "detector"
    m = json.loads(metrics.read_text()) if metrics.is_file() else None
    if m is not None:
        tdcf = f", min t-DCF {m['min_tdcf']:.4f}" if m.get("min_tdcf") is not None else ""
        lines.append(f"{m.get('split', 'eval')} EER {100 * m['eer']:.2f} % of {m.get('detector')}{tdcf}")
    places = [("executed notebooks", run_dir / "notebooks"), ("figures", run_dir / "figures"), ("metrics", metrics),
              ("scored detector", m and m.get("detector")), ("trained detector", trained if trained.is_dir() else None),
              ("scores", run_dir / "scores")]
    lines += [f"  {name + ':':20}{where}" for name, where in places if where and (not isinstance(where, Path)
                                                                                 or where.exists())]
    note, near_quota = kept_note(run_dir, folder_bytes(run_dir, skip=(LOCK_FILE,)))  # the lock goes when the run ends
    return "\n".join([*lines, ("  warning: " if near_quota else "  ") + note])
