"""What a stage folder holds, and whether it may be resumed or reused.

A stage's identity is its training parameters (all but the resume-safe ones) and the content of its
inputs (train/dev manifests, the audio they list, starting model). A folder is resumed only under the same identity, from
its last checkpoint that was written completely; a finished detector is refused for inputs it was
not trained on. Nothing here needs torch.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

import pandas as pd
import yaml

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.core.fingerprint import audio_fingerprint, manifest_fingerprint, model_identity
from xlsr_helpers.runtime.kaggle_env import folder_bytes, in_kaggle_output, kept_note

log = logging.getLogger(__name__)
COMPLETE_MARKER = ".complete"  # written last into a checkpoint folder: the checkpoint is whole


# Parameters that may change between a run and its resumption without changing what is trained.
# `model` is a path that moves with the run folder; what it holds is compared as `inputs.model`.
RESUME_SAFE = {"num_workers", "eval_batch_size", "save_total_limit", "device", "extra", "cache_dir",
               "on_change", "model", "report_to"}
RUN_RECORD = "train_config.yaml"
SUMMARY = "summary.yaml"  # written last: the stage finished
STAGE_OUTPUTS = ("checkpoints", "detector", "top_k", "history.csv", SUMMARY, RUN_RECORD)
# What only an unfinished stage needs (to resume, to average its best epochs), and a cache that an
# earlier run left in the stage folder (in Kaggle's kept output caches are on the scratch disk): dropped
# from that output once the detector is saved. detector/, history.csv, summary.yaml and
# train_config.yaml (the staleness checks read it) stay.
UNFINISHED_ONLY = ("checkpoints", "top_k", "cache")


def data_fingerprints(train_df: pd.DataFrame, dev_df: pd.DataFrame) -> dict[str, str]:
    """The trials and labels of both manifests, and what their audio files hold (other audio under
    the same ids is other data; the same audio copied elsewhere is not)."""
    return {"train_manifest": manifest_fingerprint(train_df), "dev_manifest": manifest_fingerprint(dev_df),
            "train_audio": audio_fingerprint(train_df["path"], "train manifest"),
            "dev_audio": audio_fingerprint(dev_df["path"], "dev manifest")}


def stage_identity(cfg, train_df: pd.DataFrame, dev_df: pd.DataFrame) -> dict:
    """What a stage's result depends on: its training parameters and the content of its inputs."""
    params = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RESUME_SAFE}
    return {**params, "inputs": {**data_fingerprints(train_df, dev_df), "model": model_identity(cfg.model)}}


def identity_changes(before: dict, now: dict) -> list[str]:
    """'name: old -> new' for every parameter or input that differs."""
    flat = lambda d: {**{k: v for k, v in d.items() if k != "inputs"},  # noqa: E731
                      **{f"inputs.{k}": v for k, v in d.get("inputs", {}).items()}}
    b, n = flat(before), flat(now)
    return [f"{k}: {b.get(k)!r} -> {n.get(k)!r}" for k in sorted(set(b) | set(n)) if b.get(k) != n.get(k)]


def check_same_run(out: Path, identity: dict, on_change: str = "refuse") -> None:
    """Start a stage folder, resume it, or (parameters or inputs changed) refuse or restart it: a
    detector is never reused for inputs it was not trained on."""
    path = out / RUN_RECORD
    if path.exists():
        changes = identity_changes(yaml.safe_load(path.read_text()) or {}, identity)
        if changes and on_change == "refuse":
            raise ConfigError(f"{out} holds a run with other parameters or inputs ({'; '.join(changes)}); "
                              "use a new output folder, delete this one, or set on_change='restart' to retrain here")
        if changes:
            log.warning("%s: parameters or inputs changed (%s); training this stage again", out, "; ".join(changes))
            for name in STAGE_OUTPUTS:
                target = out / name
                shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
        else:
            return
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(identity, sort_keys=True))


def stale_stage(stage_dir: Path, train_df: pd.DataFrame, dev_df: pd.DataFrame, model: str | Path | None) -> list[str]:
    """Why a finished stage's detector no longer matches these inputs ([] when it does); ``model=None``
    leaves the starting model out (a stage whose base model is not known here)."""
    path = stage_dir / RUN_RECORD
    if not path.exists():
        return [f"{stage_dir} has no {RUN_RECORD}"]
    recorded = (yaml.safe_load(path.read_text()) or {}).get("inputs", {})
    now = {**data_fingerprints(train_df, dev_df), **({} if model is None else {"model": model_identity(model)})}
    return [f"inputs.{k}: {recorded.get(k)!r} -> {v!r}" for k, v in now.items() if recorded.get(k) != v]


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """Newest checkpoint with the completion marker; incomplete ones (killed mid-write) are removed."""
    if not ckpt_dir.is_dir():
        return None
    found = []
    for d in ckpt_dir.glob("checkpoint-*"):
        if (d / COMPLETE_MARKER).exists():
            found.append((int(d.name.split("-")[1]), d))
        elif d.is_dir() and int(os.environ.get("LOCAL_RANK", "0")) == 0:
            log.warning("removing incomplete checkpoint %s (the run was killed while writing it)", d)
            shutil.rmtree(d, ignore_errors=True)
    return str(max(found)[1]) if found else None


def finish_stage_folder(out: Path, summary: dict) -> tuple[dict, str, bool]:
    """Write the finished stage's summary; in Kaggle's kept output drop ``UNFINISHED_ONLY`` first. The
    summary records what was dropped and the bytes the folder keeps, itself included. Returns the
    summary, a line on what is kept (``kaggle_env.kept_note``) and whether it is near the quota. Again
    on a finished stage's summary: what it dropped before stays recorded (``finished_stage`` reads it)."""
    before = (summary.get("kept") or {}).get("removed", [])
    inside = in_kaggle_output(out)
    removed = [n for n in UNFINISHED_ONLY if n in before or (inside and (out / n).exists())]
    summary = {**summary, "kept": {"removed": removed, "bytes": 0}}
    path = out / SUMMARY
    path.write_text(yaml.safe_dump(summary, sort_keys=False))  # first: a kill after the removal still finds it finished
    for name in removed:
        shutil.rmtree(out / name, ignore_errors=True)
    for _ in range(5):  # the record counts itself: write until the bytes it states are the folder's
        kept = folder_bytes(out)
        if kept == summary["kept"]["bytes"]:
            break
        summary["kept"]["bytes"] = kept
        path.write_text(yaml.safe_dump(summary, sort_keys=False))
    return (summary, *kept_note(out, summary["kept"]["bytes"]))


def finished_stage(out: Path) -> dict | None:
    """The summary of a stage that finished in this folder and dropped its checkpoints (so it cannot
    be resumed: it is reused as it is), else None. Called once the folder's identity was checked."""
    path = out / SUMMARY
    if not path.is_file() or not (out / "detector" / "config.json").is_file():
        return None
    summary = yaml.safe_load(path.read_text()) or {}
    return summary if "checkpoints" in (summary.get("kept") or {}).get("removed", []) else None
