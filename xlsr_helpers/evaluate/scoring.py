"""Score audio with a saved detector: length-sorted batches, sliding windows, nothing dropped.

Files up to ``window`` samples are scored whole (no padding to a fixed length); longer files are
cut into windows of ``window`` samples every ``hop`` samples and the window scores aggregated
(mean by default). Windows are sorted by length before batching, so a batch pads only to its own
longest member, and the attention mask hides the padding. A file that cannot be read or scored,
whatever the reason, is listed in the output with its error instead of being dropped or aborting
the batch; the output files are written as chunks finish (``score_output``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from xlsr_helpers.core.errors import ConfigError, failure_reason
from xlsr_helpers.core.rules import Rule, choice, integer, number, problems
from xlsr_helpers.data.audio import (
    MAX_SEGMENT_SECONDS,
    MIN_SAMPLES,
    SAMPLE_RATE,
    SEGMENT_SAMPLES,
    AudioError,
    load_audio,
    window_starts,
)
from xlsr_helpers.data.labels import decide
from xlsr_helpers.data.manifest import safe_id
from xlsr_helpers.evaluate.calibration import Calibration
from xlsr_helpers.evaluate.score_output import (  # noqa: F401 - the writers re-exported: callers import them here
    SCORE_COLUMNS,
    RowSink,
    ScoreJob,
    check_output_file,
    score_into,
    window_table,
    write_scores,
)
from xlsr_helpers.evaluate.torch_backend import Backend, TorchBackend
from xlsr_helpers.model.card import SETTINGS_FILE, read_settings
from xlsr_helpers.model.forward import scores_from_logits
from xlsr_helpers.model.loading import check_model_ref, load_feature_extractor
from xlsr_helpers.runtime.device import DEVICES, PRECISIONS

log = logging.getLogger(__name__)
AGGREGATIONS = ("mean", "max", "min", "median")  # pandas groupby reductions
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".mp3")


@dataclass
class ScoringConfig:
    """Scoring settings; ``None`` means: as the detector folder says (``xlsr_detector.json``)."""

    window: int | None = None  # samples per window; None: the detector's training segment
    hop: int | None = None  # window step for long files; None: the detector's (half a window)
    batch_size: int = 16
    aggregation: str | None = None  # None: the detector's (mean)
    threshold: float | None = None  # score > threshold -> bonafide; None: the detector's dev EER threshold
    prior_spoof: float = 0.5  # prior probability of spoof behind p_spoof (from the calibrated LLR)
    sort_by_length: bool = True  # False pads every window to `window` (the naive baseline)
    device: str = "auto"
    chunk_files: int = 512  # files decoded and scored together (bounds memory)
    load_workers: int = 4  # decoding threads
    precision: str = "auto"  # auto: bf16/fp16 autocast on GPU, fp32 on CPU

    def __post_init__(self) -> None:
        _, found = problems(SETTING_RULES, {name: getattr(self, name) for name in SETTING_RULES})
        if found:
            raise ConfigError("invalid scoring parameter(s): " + "; ".join(found))


# What each ScoringConfig field accepts (``core.rules``); notebook 04's parameters reuse these.
SETTING_RULES: dict[str, Rule] = {
    "window": integer(MIN_SAMPLES, MAX_SEGMENT_SECONDS * SAMPLE_RATE, none=True),
    "hop": integer(1, MAX_SEGMENT_SECONDS * SAMPLE_RATE, none=True), "batch_size": integer(1, 4096),
    "chunk_files": integer(1, 100_000), "load_workers": integer(1, 64), "threshold": number(None, None, none=True),
    "prior_spoof": number(0, 1, high_open=True), "aggregation": choice(*AGGREGATIONS, none=True),
    "device": choice(*DEVICES), "precision": choice(*PRECISIONS),
}


@dataclass
class ScoreInputs:
    """What ``xlsr score`` was given, one entry per file to score (or per unusable path)."""

    paths: list[Path]
    ids: list[str]
    errors: dict[int, str]  # index -> why this entry cannot be scored (a folder without audio, ...)
    skipped: list[Path]  # files inside given folders that are not audio (counted and listed, never silent)


def expand_inputs(paths: list[str | Path]) -> ScoreInputs:
    """Files as given; folders expand to the audio files below them (sorted), ids are their paths
    relative to the folder (``bonafide/0001`` and ``spoof/0001`` stay apart); a folder without
    audio is an entry with an error; other files in folders are listed as skipped."""
    entries, ids, errors, skipped = [], [], {}, []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file())
            audio = [f for f in files if f.suffix.lower() in AUDIO_EXTENSIONS]
            skipped += [f for f in files if f.suffix.lower() not in AUDIO_EXTENSIONS]
            if not audio:
                errors[len(entries)] = f"folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)})"
                entries.append(p)
                ids.append(p.name)
            for f in audio:
                entries.append(f)
                ids.append(f.relative_to(p).with_suffix("").as_posix())
        else:
            entries.append(p)
            ids.append(p.stem)
    return ScoreInputs(entries, unique_ids(ids, entries), errors, skipped)


def unique_ids(ids: list[str], paths: list[Path]) -> list[str]:
    """Whitespace-free ids; where two collide, their paths relative to the inputs' common folder,
    and a ``~N`` suffix for the same path given twice."""
    ids = [safe_id(i) for i in ids]
    counts = pd.Series(ids).value_counts()
    if (counts > 1).any():
        base = Path(os.path.commonpath([str(p.resolve().parent) for p in paths]))
        ids = [safe_id(p.resolve().relative_to(base).with_suffix("").as_posix()) if counts[i] > 1 else i
               for i, p in zip(ids, paths, strict=True)]
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}~{seen[i]}")
    return out


def _windows(wave: np.ndarray, cfg: ScoringConfig) -> list[np.ndarray]:
    return [wave[s:s + cfg.window] for s in window_starts(wave.size, cfg.window, cfg.hop)]


class Scorer:
    """A loaded detector + feature extractor that turns waveforms into ASVspoof scores.

    ``backend`` runs the model on padded batches (``torch_backend.Backend``); default: the folder's
    detector in torch. Another back-end (``serve.onnx_backend``) reuses everything else here."""

    def __init__(self, model_dir: str | Path, config: ScoringConfig = ScoringConfig(), backend: Backend | None = None):
        if backend is None:
            check_model_ref(model_dir, detector=True)  # the folder and its files, before its settings are read
        self.settings = read_settings(model_dir)
        try:
            self.cfg = resolve_scoring(config, self.settings)
        except ConfigError as exc:  # the given values were checked already: these came from the folder
            raise ConfigError(f"{Path(model_dir) / SETTINGS_FILE}: {exc}") from None
        cal = self.settings.get("calibration")
        self.calibration = Calibration.from_dict(cal) if cal else None
        self.backend = backend or TorchBackend(model_dir, config.device, config.precision)
        self.label_order = self.backend.label_order
        self.feature_extractor = load_feature_extractor(model_dir)

    def score_windows(self, windows: list[np.ndarray]) -> np.ndarray:
        """Scores of windows, batched in length order (or padded to the window length)."""
        order = np.argsort([-w.size for w in windows], kind="stable") if self.cfg.sort_by_length \
            else np.arange(len(windows))
        out = np.empty(len(windows), dtype=np.float64)
        for i in range(0, len(order), self.cfg.batch_size):
            idx = order[i:i + self.cfg.batch_size]
            batch = self.feature_extractor(
                [windows[j] for j in idx], sampling_rate=SAMPLE_RATE, return_attention_mask=True,
                return_tensors="np", padding="longest" if self.cfg.sort_by_length else "max_length",
                max_length=None if self.cfg.sort_by_length else self.cfg.window)
            logits = self.backend.logits(batch["input_values"], batch["attention_mask"])
            out[idx] = scores_from_logits(logits.astype(np.float64), self.label_order)
        return out

    def _load_windows(self, path: Path) -> tuple[list[np.ndarray], int] | str:
        try:
            wave = load_audio(path)
        except Exception as exc:  # noqa: BLE001 - whatever one file raises becomes its row, not the batch's end
            if not isinstance(exc, AudioError):
                log.warning("%s: %s", path, failure_reason(exc), exc_info=log.isEnabledFor(logging.DEBUG))
            return failure_reason(exc)
        if wave.size < MIN_SAMPLES:  # the CNN would yield no frame: an error row, not a meaningless score
            return f"too short: {wave.size} samples at 16 kHz (< {MIN_SAMPLES}, the encoder's 25 ms receptive field)"
        return _windows(wave, self.cfg), wave.size

    def _score_loaded(self, loaded: dict[int, list[np.ndarray]], scores: np.ndarray) -> None:
        windows = [w for ws in loaded.values() for w in ws]
        if windows:
            counts = [len(ws) for ws in loaded.values()]
            each = self.score_windows(windows)
            per_file = pd.Series(each).groupby(np.repeat(list(loaded), counts)).agg(self.cfg.aggregation)
            scores[per_file.index.to_numpy()] = per_file.to_numpy()
            # kept for score_files' on_windows (an attribute: _score_chunk's signature stays as it is)
            self._window_scores.update(zip(loaded, np.split(each, np.cumsum(counts)[:-1]), strict=True))

    def _score_chunk(self, loaded: dict[int, list[np.ndarray]], scores: np.ndarray, errors: dict[int, str]) -> None:
        """Score a chunk's files together; if that fails, each file alone, so that a failure costs
        only the files that fail by themselves (all of several failing alone: the model, re-raised)."""
        try:
            self._score_loaded(loaded, scores)
            return
        except Exception as exc:  # noqa: BLE001 - retried file by file below
            if len(loaded) == 1:
                errors[next(iter(loaded))] = f"scoring failed: {failure_reason(exc)}"
                return
        failed = {}
        for k, ws in loaded.items():
            try:
                self._score_loaded({k: ws}, scores)
            except Exception as exc:  # noqa: BLE001 - this file's row
                failed[k] = exc
        if len(failed) == len(loaded):
            raise next(iter(failed.values()))
        errors.update({k: f"scoring failed: {failure_reason(e)}" for k, e in failed.items()})

    def score_files(self, files: list[str | Path], ids: list[str] | None = None, progress: bool = True,
                    known_errors: dict[int, str] | None = None, on_rows: RowSink | None = None,
                    extra: pd.DataFrame | None = None, on_windows: RowSink | None = None) -> pd.DataFrame:
        """One row per input file: utt_id, path, score, llr, p_spoof, label_pred, n_windows, error
        (then ``extra``'s columns, one row per file). ``on_windows`` receives each chunk's window
        scores, one row per window (``score_output.window_table``).

        Files are decoded in threads and scored ``chunk_files`` at a time, so memory stays flat
        on corpora of any size (ASVspoof 2021 DF has 611k files). ``on_rows`` receives each chunk's
        finished rows in input order (all rows at once under torchrun), e.g. to write them as they come."""
        files = [Path(f) for f in files]
        ids = ids or [f.stem for f in files]
        scores = np.full(len(files), np.nan)
        n_windows = np.zeros(len(files), dtype=int)
        errors: dict[int, str] = dict(known_errors or {})
        rank, world = _rank_world()
        if on_windows is not None and world > 1:
            raise ConfigError("window scores are written by one process only: score without torchrun for them")
        mine = range(rank, len(files), world)  # under torchrun each process scores every world-th file

        def table(idx: range) -> pd.DataFrame:  # reads the arrays as they are when called (after a gather too)
            return self._rows(idx, ids, files, scores, n_windows, errors, extra)

        with ThreadPoolExecutor(max_workers=self.cfg.load_workers) as pool, \
                tqdm(total=len(files), desc="scoring", unit="file", disable=not progress, leave=False) as bar:
            for start in range(0, len(mine), self.cfg.chunk_files):
                chunk = mine[start:start + self.cfg.chunk_files]
                todo = [k for k in chunk if k not in errors]
                loaded, lengths, self._window_scores = {}, {}, {}
                for k, got in zip(todo, pool.map(self._load_windows, [files[k] for k in todo]), strict=True):
                    if isinstance(got, str):
                        errors[k] = got
                    else:
                        (loaded[k], lengths[k]), n_windows[k] = got, len(got[0])
                self._score_chunk(loaded, scores, errors)
                n_windows[[k for k in loaded if k in errors]] = 0  # failed in scoring: no window scored
                if on_rows is not None and world == 1:
                    on_rows(table(chunk))
                if on_windows is not None:
                    done = [k for k in loaded if k not in errors]
                    on_windows(window_table([ids[k] for k in done], [files[k] for k in done], [lengths[k] for k in done],
                                            [self._window_scores[k] for k in done], self.cfg.window, self.cfg.hop))
                bar.update(len(chunk))
        if world > 1:  # gather every process's share: all of them return the whole table
            scores, n_windows, errors = _gather(mine, scores, n_windows, errors)
            if on_rows is not None:
                on_rows(table(range(len(files))))
        return table(range(len(files)))

    def _rows(self, idx: range, ids: list[str], files: list[Path], scores: np.ndarray, n_windows: np.ndarray,
              errors: dict[int, str], extra: pd.DataFrame | None) -> pd.DataFrame:
        """The output rows of the files at ``idx`` (one layout for a chunk and for the whole table)."""
        sel = np.asarray(idx, dtype=int)
        s = scores[sel]
        df = pd.DataFrame({"utt_id": [ids[k] for k in sel], "path": [str(files[k]) for k in sel], "score": s},
                          index=sel)
        # a probability only from a calibrated LLR and a stated prior; NaN (said once) without calibration
        df["llr"] = self.calibration.llr(s) if self.calibration else np.nan
        df["p_spoof"] = self.calibration.p_spoof(s, self.cfg.prior_spoof) if self.calibration else np.nan
        df["label_pred"] = np.where(np.isnan(s), "", decide(s, self.cfg.threshold))
        df["n_windows"] = n_windows[sel]
        df["error"] = [errors.get(k, "") for k in sel]
        if extra is not None:
            df = pd.concat([df, extra.iloc[sel].set_axis(sel)], axis=1)
        return df.reset_index(drop=True)

    def score_manifest(self, manifest: pd.DataFrame, progress: bool = True,
                       on_rows: RowSink | None = None) -> pd.DataFrame:
        """Score a manifest; its label/attack columns are kept for metrics."""
        keep = [c for c in manifest.columns if c not in SCORE_COLUMNS]
        return self.score_files(manifest["path"].tolist(), manifest["utt_id"].tolist(), progress, on_rows=on_rows,
                                extra=manifest[keep].reset_index(drop=True))


def init_distributed() -> int:
    """Under torchrun (WORLD_SIZE > 1) join the process group (gloo on CPU, nccl on GPUs) and pin this
    process to its GPU; returns the rank (0 without torchrun)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return _rank_world()[0]
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank()


def finish_distributed() -> None:
    """Leave the process group cleanly (torch 2.10's gloo aborts a process that exits inside it)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _gather(mine: range, scores: np.ndarray, n_windows: np.ndarray, errors: dict) -> tuple:
    """Merge the processes' shares (each filled only its own indices) into the full arrays."""
    idx = np.asarray(mine)
    own = set(mine)  # once, not per error: a corpus may hold many unreadable files
    share = (idx, scores[idx], n_windows[idx], {k: v for k, v in errors.items() if k in own})
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, share)
    scores, n_windows, errors = scores.copy(), n_windows.copy(), dict(errors)
    for i, s, n, e in parts:
        scores[i], n_windows[i] = s, n
        errors.update(e)
    return scores, n_windows, errors


def resolve_scoring(config: ScoringConfig, settings: dict) -> ScoringConfig:
    """Fill the unset fields from the detector's settings (training segment, its scoring window, hop
    and aggregation, dev EER threshold); a detector without settings gets the old defaults, said once."""
    scoring = settings.get("scoring", {})
    if not settings and (config.window is None or config.threshold is None):
        log.warning("the detector folder has no %s: scoring with %d-sample windows and threshold 0",
                    "xlsr_detector.json", SEGMENT_SAMPLES)
    window = config.window or scoring.get("window") or settings.get("segment_samples") or SEGMENT_SAMPLES
    return replace(config, window=window,
                   hop=config.hop or (scoring.get("hop") if config.window is None else None) or window // 2,
                   aggregation=config.aggregation or scoring.get("aggregation", "mean"),
                   threshold=config.threshold if config.threshold is not None
                   else settings.get("dev", {}).get("threshold", 0.0))
