"""What the chain's parameters refer to, checked before notebook 01 starts.

``params`` checks each value on its own (types, ranges, choices); this checks what the values point
at and how they fit together: the base model exists and has the layers stage 2 unfreezes, the
augmentations and their folders exist, the reporters are installed, a CUDA device is there when
asked for, the splits to score belong to the corpus, the ASV score files exist. Found late, each
of these cost a data preparation or a training; here they cost nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from xlsr_helpers.core.errors import ConfigError, XlsrError, short
from xlsr_helpers.data.augment import make_augmenter
from xlsr_helpers.data.corpora import parse_corpora
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.model.loading import check_model_ref, tiny_config
from xlsr_helpers.pipeline.params import PATH_PARAMETERS, TINY_RANDOM
from xlsr_helpers.pipeline.runfolder import find_attached_model
from xlsr_helpers.train.config import reporting_problems

ASV_KEYWORDS = ("auto", "none")


def check_before_start(values: dict) -> None:
    """Every problem found, in one ``ConfigError``; nothing when the chain can start."""
    found = [*_text_problems(values), *_model_problems(values), *_augment_problems(values),
             *_device_problems(values), *_corpus_problems(values)]
    if values.get("report_to") is not None:
        found += [f"parameter {p}" for p in reporting_problems(values["report_to"])]
    if found:
        raise ConfigError("; ".join(found))


def _text_problems(values: dict) -> list[str]:
    """A path or name given as a YAML list, mapping or number (``'list' object has no attribute ...`` later)."""
    return [f"parameter {name}={short(values[name])}: expected a path or name (text)"
            for name in PATH_PARAMETERS if name in values and not isinstance(values[name], str)]


def model_depth(name: str) -> int | None:
    """Transformer layers of a base model, read from its config.json (never the weights); None when
    only the hub knows (a hub id without an attached copy)."""
    if name == TINY_RANDOM:
        return tiny_config().num_hidden_layers
    folder = Path(name).expanduser()
    if not folder.is_dir():
        folder = find_attached_model(name)
    if folder is None or not (folder / "config.json").is_file():
        return None
    try:
        return int(json.loads((folder / "config.json").read_text())["num_hidden_layers"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise ConfigError(f"parameter base_model={short(name)}: {folder / 'config.json'} is unreadable "
                          f"({type(exc).__name__}: {exc})") from None


def _model_problems(values: dict) -> list[str]:
    name = values.get("base_model")
    if not isinstance(name, str):
        return []
    if name != TINY_RANDOM:
        try:
            check_model_ref(name)
        except XlsrError as exc:
            return [f"parameter base_model={short(name)}: {exc}"]
    try:
        depth = model_depth(name)
    except ConfigError as exc:
        return [str(exc)]
    top = values.get("s2_top_layers")
    if depth is not None and isinstance(top, int) and top > depth:
        return [f"parameter s2_top_layers={top}: the base model {name} has {depth} transformer layers"]
    return []


def _augment_problems(values: dict) -> list[str]:
    if not isinstance(values.get("s2_augment", "none"), str):
        return [f"parameter s2_augment={short(values['s2_augment'])}: expected names joined with '+'"]
    noise, rir = values.get("s2_noise_dir", ""), values.get("s2_rir_dir", "")
    if not (isinstance(noise, str) and isinstance(rir, str)):
        return []  # said by _text_problems
    try:
        make_augmenter(values.get("s2_augment", "none"), noise, rir)
    except XlsrError as exc:
        return [f"parameter s2_augment={short(values.get('s2_augment'))}: {exc}"]
    return []


def _device_problems(values: dict) -> list[str]:
    if values.get("device") != "cuda":
        return []
    import torch  # only when CUDA is asked for: the other checks stay torch-free
    if torch.cuda.is_available():
        return []
    return [f"parameter device='cuda': no CUDA device is visible to torch {torch.__version__} "
            "(device=auto uses the GPU when there is one, the CPU otherwise)"]


def _corpus_name_problems(values: dict, corpora: list[str]) -> list[str]:
    """corpus_weights and select_on name corpora of dataset (before 01 reads any of them)."""
    found = []
    weights = values.get("corpus_weights", "none")
    if isinstance(weights, str) and weights not in ("none", "balanced"):
        named = [part.rpartition(":")[0].strip() for part in weights.split(",")]
        if unknown := [n for n in named if n not in corpora] + [f"no share for {c}" for c in corpora if c not in named]:
            found.append(f"parameter corpus_weights={short(weights)}: {unknown} (the corpora are {corpora})")
    select_on = values.get("select_on", "pooled")
    if select_on not in ("pooled", "mean", *corpora):
        found.append(f"parameter select_on={short(select_on)}: expected 'pooled', 'mean' or one of {corpora}")
    return found


def _corpus_problems(values: dict) -> list[str]:
    found = []
    splits = values.get("score_splits", "auto")
    dataset = values.get("dataset")
    if not isinstance(splits, str) or not splits.strip():
        found.append(f"parameter score_splits={short(splits)}: expected 'auto' or split names joined with ','")
    elif splits != "auto" and isinstance(dataset, str):
        try:
            known = {s for spec in parse_corpora(dataset) for s in load_descriptor(spec.descriptor)["splits"]}
        except XlsrError:
            known = None  # the dataset parameter's own check names the descriptor's problem
        wanted = [s.strip() for s in splits.split(",")]
        unknown = [s for s in wanted if known is not None and s not in known]
        if unknown:
            found.append(f"parameter score_splits={short(splits)}: {unknown} not among {dataset}'s splits {sorted(known)}")
    if isinstance(dataset, str) and isinstance(values.get("data_root"), str):
        try:
            corpora = [s.corpus for s in parse_corpora(dataset, values["data_root"])]  # one root per corpus
        except XlsrError as exc:
            found.append(f"parameter {exc}")
        else:
            found += _corpus_name_problems(values, corpora)
    asv = values.get("asv_scores", "auto")
    if not isinstance(asv, str):
        found.append(f"parameter asv_scores={short(asv)}: expected 'auto', 'none' or the path of an ASV score file")
    elif asv not in ASV_KEYWORDS and not Path(asv).expanduser().is_file():
        found.append(f"parameter asv_scores={short(asv)}: no such file (give 'auto', 'none' or an ASV score file)")
    return found
