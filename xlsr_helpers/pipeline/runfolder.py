"""Where a run reads and writes: the run folder (what counts as one, clearing its old results), the
corpus root, the base model and the detector that notebook 04 scores (refused when stale)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import yaml

from xlsr_helpers.core.errors import ConfigError, RunFolderError
from xlsr_helpers.core.written import WRITTEN, not_written, remove_written
from xlsr_helpers.data.corpora import CorpusSpec, parse_corpora
from xlsr_helpers.data.demo import SIZES, make_demo_corpus
from xlsr_helpers.data.manifest import find_root, read_manifest
from xlsr_helpers.evaluate.corpora import RESULTS_DIR, derived_results
from xlsr_helpers.evaluate.table import TABLE_FILES
from xlsr_helpers.model.loading import save_random_backbone
from xlsr_helpers.pipeline.params import TINY_RANDOM
from xlsr_helpers.pipeline.run_state import RUN_STATE
from xlsr_helpers.pipeline.runlock import LOCK_FILE
from xlsr_helpers.runtime.kaggle_env import glob_input, kaggle_input, kaggle_working, on_kaggle
from xlsr_helpers.train.state import RUN_RECORD, stale_stage

log = logging.getLogger(__name__)


def resolve_run_dir(run_dir: str | Path) -> Path:
    """``'auto'``: ``/kaggle/working/xlsr-run`` on Kaggle, else ``runs/full``."""
    if str(run_dir) == "auto":
        run_dir = kaggle_working() / "xlsr-run" if on_kaggle() else Path("runs/full")
    p = Path(run_dir).expanduser().resolve()
    p.mkdir(parents=True, exist_ok=True)
    return p


def resolve_data_root(spec: str, dataset: str, run_dir: Path, seed: int = 0, make: bool = True) -> Path:
    """``'auto'`` (Kaggle mounts), ``'demo:small'``/``'demo:tiny'`` (the demo corpus in the run
    folder: ``demo_corpus``), or a path."""
    if spec == "auto":
        return find_root(dataset)
    if spec.startswith("demo:"):
        return demo_corpus(run_dir, spec.split(":", 1)[1], seed, make)
    return find_root(dataset, spec)


def resolve_corpora(dataset: str, data_root: str, run_dir: Path, seed: int = 0,
                    make: bool = True) -> tuple[list[CorpusSpec], list[Path]]:
    """The corpora of ``dataset`` (``a+b``: ``data.corpora.parse_corpora``) and each one's root,
    resolved as ``resolve_data_root`` does (``auto``, ``demo:<size>`` or a folder). One demo corpus
    per run folder: two ``demo:`` roots are refused (they would be the same folder)."""
    specs = parse_corpora(dataset, data_root)
    demos = [s.root for s in specs if s.root.startswith("demo:")]
    if len(demos) > 1:
        raise ConfigError(f"data_root={data_root!r}: {len(demos)} demo corpora; a run folder holds one "
                          "(give the others as folders, e.g. made with xlsr demo-data)")
    return specs, [resolve_data_root(s.root, s.descriptor, run_dir, seed, make) for s in specs]


DEMO_DIR, DEMO_RECORD = "demo_data", "demo.yaml"  # the record (size, seed) is written last: a whole corpus


def demo_corpus(run_dir: Path, size: str, seed: int = 0, make: bool = True) -> Path:
    """The run folder's demo corpus of this size and seed. ``make``: generated when absent, and again
    when the folder holds another size or seed (notebook 01); otherwise (04, scoring what 01 built)
    another corpus is an error: its ASV scores and files are not the ones the manifests came from."""
    if size not in SIZES:
        raise ConfigError(f"data_root='demo:{size}': expected one of {[f'demo:{s}' for s in SIZES]} or a folder")
    folder, wanted = run_dir / DEMO_DIR, {"size": size, "seed": seed}
    record = folder / DEMO_RECORD
    held = (yaml.safe_load(record.read_text()) or {}) if record.is_file() else None
    if held == wanted:
        return folder / "LA"
    if not make:
        if held is None and (folder / "LA" / "ASVspoof2019_LA_cm_protocols").is_dir():
            return folder / "LA"  # generated before sizes were recorded; the stages compare its audio
        what = "no demo corpus" if held is None else f"the demo:{held.get('size')} corpus (seed {held.get('seed')})"
        raise ConfigError(f"data_root='demo:{size}': {folder} holds {what}; give the data_root that notebook 01 "
                          "used, or run 01 again with this one")
    tmp = run_dir / f"{DEMO_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    make_demo_corpus(tmp, seed=seed, size=size)
    (tmp / DEMO_RECORD).write_text(yaml.safe_dump(wanted, sort_keys=True))
    if folder.exists():
        log.warning("%s held %s; generating the demo:%s corpus (seed %d) in its place", folder,
                    "a corpus of unknown size" if held is None else f"the demo:{held.get('size')} corpus", size, seed)
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return folder / "LA"


def resolve_base_model(name: str, run_dir: Path) -> str:
    """A folder as given; ``'tiny-random'`` makes (once) a random tiny wav2vec2 folder; a hub id is
    replaced by a copy of that model attached to the Kaggle kernel (a dataset or a Kaggle Model), so
    that an offline kernel needs no hub access."""
    if name == TINY_RANDOM:
        folder = run_dir / "tiny-random-wav2vec2"
        if not (folder / "config.json").exists():
            save_random_backbone(folder)
        return str(folder)
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    attached = find_attached_model(name)
    if attached is not None:
        log.info("using %s, the attached copy of %s (no hub access needed)", attached, name)
        return str(attached)
    return name


MODEL_PATTERNS = ["*", "*/*", "*/*/*", "*/*/*/*"]  # dataset roots and Kaggle Models' <framework>/<variation>/<version>


def find_attached_model(hub_id: str) -> Path | None:
    """A folder under the Kaggle input root holding this hub model's saved files: config.json and
    weights, with the model's name (e.g. ``wav2vec2-xls-r-300m`` or ``xls-r-300m``) in its path."""
    name = hub_id.rstrip("/").split("/")[-1].lower()
    names = {name, name.removeprefix("wav2vec2-")}
    for folder in glob_input(MODEL_PATTERNS):
        rel = str(folder.relative_to(kaggle_input())).lower()
        if any(n in rel for n in names) and (folder / "config.json").is_file() and \
                any(folder.glob("*.safetensors")) | any(folder.glob("pytorch_model*.bin")):
            return folder
    return None


def evaluation_detector(run_dir: Path, detector: str) -> Path:
    """The detector notebook 04 scores. ``'auto'``: this run's stage-2 detector, refused when it was
    trained from manifests or a stage-1 detector that have changed since. Changes nothing."""
    if detector != "auto":
        return Path(detector).expanduser()
    stage1, stage2 = run_dir / "stage1", run_dir / "stage2"
    train_df, dev_df = (read_manifest(run_dir / "manifests" / f"{s}.csv") for s in ("train", "dev"))
    reasons = stale_stage(stage2, train_df, dev_df, stage1 / "detector")
    if (stage1 / RUN_RECORD).exists():
        reasons += [f"stage1 {r}" for r in stale_stage(stage1, train_df, dev_df, None)]
    if reasons:
        raise ConfigError(f"{stage2 / 'detector'} is stale: {'; '.join(reasons)}; run 02/03 again "
                          "(on_change='restart') or give detector=<folder> to score another detector")
    return stage2 / "detector"


RESULTS = ("metrics.json", "scores")  # written by 04; removed whenever an earlier step may change
# results/<corpus>/ keeps its scores with their inputs record (evaluate.corpora): taken over only while every
# input matches, removed by 04 once the detector or the scoring settings differ; all else there is derived
RUN_MARKERS = (WRITTEN, RUN_STATE, "params.yaml", LOCK_FILE)  # a folder holding one of these is a run folder


def is_run_folder(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds an xlsr run (its record, run state, parameters or lock)."""
    return any((run_dir / m).exists() for m in RUN_MARKERS)


def check_run_folder(run_dir: Path) -> None:
    """Refuse a non-empty folder that holds no xlsr run: a run would write (and clear) among its files."""
    if run_dir.is_dir() and not is_run_folder(run_dir) and any(run_dir.iterdir()):
        raise RunFolderError(f"run folder {run_dir} is not empty and holds no xlsr run (none of "
                             f"{', '.join(RUN_MARKERS)}); give a new or empty folder, or one an earlier xlsr run wrote")


def result_paths(run_dir: Path) -> list[Path]:
    """Where 04 writes: metrics.json and scores/<split>.csv|txt for each manifest of the run."""
    splits = sorted(p.stem for p in (run_dir / "manifests").glob("*.csv"))
    return [run_dir / "metrics.json", *(run_dir / "scores" / f"{s}.{ext}" for s in splits for ext in ("csv", "txt")),
            *(run_dir / RESULTS_DIR / name for name in TABLE_FILES)]


def clear_results(run_dir: Path) -> list[Path]:
    """Remove 04's results (metrics.json, scores/, the results table and all it derives per corpus): they
    describe detectors and manifests that the notebooks about to run may change, and must not outlive
    them. A corpus's finished scores stay with their inputs record: 04 takes them over only when every
    input matches (``evaluate.corpora``). Only what the run folder's record lists goes; a file the
    project did not write where 04 will write is refused (before any work)."""
    removed = remove_written(run_dir, [*RESULTS, *derived_results(run_dir)])
    foreign = not_written(run_dir, result_paths(run_dir))
    if foreign:
        raise RunFolderError(f"{', '.join(map(str, foreign))}: not written by xlsr (not listed in {run_dir / WRITTEN}), "
                             "and notebook 04 would overwrite it; move it out of the run folder, or give another run folder")
    return removed
