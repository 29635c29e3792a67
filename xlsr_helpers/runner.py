"""Run the notebook chain with papermill: presets, parameter checks, clear failures, resume.

``xlsr run --preset demo`` executes ``notebooks/01..04`` in order, writing executed copies to
``RUN_DIR/notebooks/`` and the resolved parameters to ``RUN_DIR/params.yaml``. A parameter that no
notebook declares is an error before anything runs (papermill itself only warns).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml

from .errors import XlsrError

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
PRESET_DIR = REPO / "presets"
NOTEBOOKS = ["01_data_prep", "02_stage1_head", "03_stage2_finetune", "04_eval_eer"]
# What a stage needs from the earlier ones when the chain starts there (--from).
REQUIRED_BEFORE = {
    "02_stage1_head": ["manifests/train.csv", "manifests/dev.csv"],
    "03_stage2_finetune": ["manifests/train.csv", "stage1/detector/config.json"],
    "04_eval_eer": ["manifests"],  # the detector may live elsewhere (parameter `detector`)
}


class PipelineError(XlsrError, RuntimeError):
    """A preset/parameter problem, or a notebook that failed (named with its cell and error)."""


def load_preset(name: str) -> dict:
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise PipelineError(f"unknown preset {name!r}: choose one of {known} or give a .yaml path")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: a preset is a flat mapping of notebook parameters")
    return data


def notebook_parameters(name: str) -> dict:
    """Declared parameters (name -> default) of one notebook, via papermill's inspector."""
    import papermill as pm
    params = pm.inspect_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"))
    return {k: v["default"] for k, v in params.items()}


def resolve_parameters(preset: dict, overrides: dict, run_dir: Path) -> dict[str, dict]:
    """Per-notebook parameters; an unknown key (in the preset or an override) is an error."""
    merged = {**preset, **overrides, "run_dir": str(run_dir)}
    declared = {nb: notebook_parameters(nb) for nb in NOTEBOOKS}
    known = set().union(*declared.values())
    unknown = sorted(set(merged) - known)
    if unknown:
        raise PipelineError(f"parameter(s) {unknown} are declared by no notebook; known parameters: {sorted(known)}")
    return {nb: {k: v for k, v in merged.items() if k in names} for nb, names in declared.items()}


def notebook_name(ref: str) -> str:
    """'2', '02' or '02_stage1_head' -> '02_stage1_head'."""
    for nb in NOTEBOOKS:
        if nb == ref or nb.startswith(str(ref).strip().zfill(2) + "_"):
            return nb
    raise PipelineError(f"unknown notebook {ref!r}: expected one of 01, 02, 03, 04")


def select_notebooks(start_from: str | None = None, only: list[str] | None = None) -> list[str]:
    """All notebooks, those from ``start_from`` on, or exactly ``only`` (kept in chain order)."""
    if start_from and only:
        raise PipelineError("use either --from or --only, not both")
    if only:
        chosen = {notebook_name(r) for r in only}
        return [nb for nb in NOTEBOOKS if nb in chosen]
    return NOTEBOOKS[NOTEBOOKS.index(notebook_name(start_from)):] if start_from else list(NOTEBOOKS)


def describe_parameters() -> str:
    """Every notebook parameter with its default, for ``xlsr run --list-params``."""
    lines = []
    for nb in NOTEBOOKS:
        lines.append(f"{nb}:")
        lines += [f"  {k} = {v}" for k, v in notebook_parameters(nb).items()]
    return "\n".join(lines)


def run_pipeline(preset: str = "demo", overrides: dict | None = None, run_dir: str | Path | None = None,
                 start_from: str | None = None, kernel_name: str = "python3", progress_bar: bool = True,
                 only: list[str] | None = None) -> int:
    """Execute the notebooks in order; raise ``PipelineError`` naming the notebook and cell on failure."""
    import papermill as pm

    params = load_preset(preset)
    run_dir = Path(run_dir or params.get("run_dir") or f"runs/{Path(preset).stem}").expanduser().resolve()
    resolved = resolve_parameters(params, overrides or {}, run_dir)
    chosen = select_notebooks(start_from, only)
    produced_here = set()
    for nb in chosen:  # what a notebook needs must exist already or come from one that runs before it
        needs = [p for p in REQUIRED_BEFORE.get(nb, []) if not (run_dir / p).exists()]
        earlier = NOTEBOOKS[:NOTEBOOKS.index(nb)]
        if needs and not produced_here & set(earlier):
            raise PipelineError(f"{nb}: {run_dir} lacks {needs}; run the earlier notebooks first")
        produced_here.add(nb)
    out_dir = run_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "params.yaml").write_text(yaml.safe_dump(
        {"preset": preset, "overrides": overrides or {}, "notebooks": resolved}, sort_keys=False))
    t0 = time.time()
    for nb in chosen:
        out = out_dir / f"{nb}.ipynb"
        print(f"[xlsr run] {nb} ...", file=sys.stderr, flush=True)
        t = time.time()
        try:
            pm.execute_notebook(str(NOTEBOOK_DIR / f"{nb}.ipynb"), str(out), parameters=resolved[nb],
                                kernel_name=kernel_name, progress_bar=progress_bar, cwd=str(REPO))
        except pm.PapermillExecutionError as exc:
            raise PipelineError(
                f"notebook {nb} failed in cell {exc.cell_index} (execution {exc.exec_count}): "
                f"{exc.ename}: {exc.evalue}\npartial executed copy: {out}") from None
        print(f"[xlsr run] {nb} done in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
    metrics = run_dir / "metrics.json"
    if metrics.exists() and chosen == NOTEBOOKS:  # record the whole chain's wall time next to the metrics
        import json
        m = json.loads(metrics.read_text())
        m["chain_seconds"] = round(time.time() - t0, 1)
        metrics.write_text(json.dumps(m, indent=2))
    print(summary(run_dir, time.time() - t0))
    return 0


def summary(run_dir: Path, seconds: float) -> str:
    """Where everything landed."""
    lines = [f"\nfinished in {seconds:.0f} s; outputs in {run_dir}",
             f"  executed notebooks: {run_dir / 'notebooks'}",
             f"  figures:            {run_dir / 'figures'}",
             f"  metrics:            {run_dir / 'metrics.json'}",
             f"  detector:           {run_dir / 'stage2' / 'detector'}",
             f"  scores:             {run_dir / 'scores'}"]
    metrics = run_dir / "metrics.json"
    if metrics.exists():
        import json
        m = json.loads(metrics.read_text())
        tdcf = f", min t-DCF {m['min_tdcf']:.4f}" if m.get("min_tdcf") is not None else ""
        lines.insert(1, f"{m.get('split', 'eval')} EER {100 * m['eer']:.2f} %{tdcf}")
    return "\n".join(lines)
