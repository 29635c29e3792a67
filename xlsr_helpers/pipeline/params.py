"""Notebook parameters: allowed types and values, checked before any work (runner and notebooks).

A value from a preset, ``--set`` or papermill is checked against its rule here, so that
``s1_epochs=abc`` stops ``xlsr run`` before notebook 01 runs, naming the parameter and what it
accepts. Numbers written as strings (YAML reads ``1e-3`` as a string) are accepted and converted.
The rules are the training fields' and scoring settings' own (``core.rules``), found through the
one notebook-to-config mapping below.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from xlsr_helpers.core.errors import ConfigError, XlsrError, short
from xlsr_helpers.core.rules import Rule, choice, integer, number
from xlsr_helpers.data.audio import MAX_SEGMENT_SECONDS, MIN_SAMPLES, SAMPLE_RATE
from xlsr_helpers.data.corpora import parse_corpora, split_joined
from xlsr_helpers.data.labels import PHASES
from xlsr_helpers.evaluate.corpora import parse_eval_datasets
from xlsr_helpers.evaluate.scoring import SETTING_RULES
from xlsr_helpers.pipeline.notebooks import notebook_parameters
from xlsr_helpers.train.config import FIELD_RULES, TrainConfig

TINY_RANDOM = "tiny-random"  # base_model value: a random-initialised tiny wav2vec2 (demo and tests)
PATH_PARAMETERS = ("run_dir", "data_root", "detector", "cache_dir", "base_model", "resume_from", "s2_noise_dir",
                   "s2_rir_dir", "dataset", "asv_scores")

# Notebook parameter -> the TrainConfig field it sets, per stage (02: s1_*, 03: s2_*), written once:
# notebooks 02/03 build their config with ``stage_config`` and every rule below is the field's own.
STAGE_FIELDS = {
    1: {"s1_epochs": "epochs", "s1_batch_size": "batch_size", "s1_learning_rate": "learning_rate",
        "s1_patience": "early_stopping_patience"},
    2: {"s2_top_layers": "top_layers", "s2_epochs": "epochs", "s2_batch_size": "batch_size",
        "s2_grad_accum": "grad_accum", "s2_learning_rate": "learning_rate", "s2_patience": "early_stopping_patience",
        "s2_average_top_k": "average_top_k", "grad_checkpointing": "grad_checkpointing", "s2_augment": "augment",
        "s2_noise_dir": "noise_dir", "s2_rir_dir": "rir_dir", "s2_encoder_learning_rate": "encoder_learning_rate",
        "s2_layer_decay": "layer_decay"},
}
SHARED_FIELDS = ("head", "cache", "cache_dir", "precision", "device", "num_workers", "eval_batch_size", "seed",
                 "on_change", "report_to", "corpus_weights", "select_on")  # same name in the notebooks and in TrainConfig
# Notebook 04's parameter -> the ScoringConfig field whose rule it follows (seconds become samples there).
SCORING_FIELDS = {"score_batch_size": "batch_size", "aggregation": "aggregation", "prior_spoof": "prior_spoof"}
SECONDS = number(MIN_SAMPLES / SAMPLE_RATE, MAX_SEGMENT_SECONDS, low_open=False)

RULES: dict[str, Rule] = {
    **{param: FIELD_RULES[field] for fields in STAGE_FIELDS.values() for param, field in fields.items()
       if field in FIELD_RULES},
    **{name: FIELD_RULES[name] for name in SHARED_FIELDS if name in FIELD_RULES},
    **{param: SETTING_RULES[field] for param, field in SCORING_FIELDS.items()},
    "grad_checkpointing": Rule("bool"), "allow_missing": Rule("bool"), "check_audio": Rule("bool"),
    "segment_seconds": SECONDS, "score_window_seconds": dataclasses.replace(SECONDS, auto=True),
    "score_hop_seconds": dataclasses.replace(SECONDS, auto=True),
    "aggregation": dataclasses.replace(SETTING_RULES["aggregation"], none=False, auto=True),
    "max_trials_per_split": integer(2, 10**8, none=True), "duration_sample": integer(1, 10**7),
    "bootstrap": integer(0, 100_000), "worst_examples": integer(0, 1000),
    "phase": choice(*PHASES),
}


def check_value(name: str, value):
    """The value converted to its rule's type; ``ConfigError`` naming the parameter when it does not fit."""
    if name == "dataset":
        return _check_dataset(value)
    if name == "data_root":
        return _check_data_root(value)
    if name == "corpus_weights":
        from xlsr_helpers.data.datasets import parse_corpus_weights  # torch: only when the parameter is given
        try:
            parse_corpus_weights(value)
        except ConfigError as exc:
            raise ConfigError(f"parameter {exc}") from None
    if name == "eval_datasets":  # 04's further corpora: every descriptor loaded, roots checked where 04 reads them
        parse_eval_datasets(value)
        return value
    rule = RULES.get(name)
    if rule is None:
        return value  # free-form strings (paths, ids): checked where they are used
    if name == "cache" and isinstance(value, bool):  # YAML reads on/off as booleans
        value = "on" if value else "off"
    ok, out = rule.accepts(value, convert=True)
    if not ok:
        raise ConfigError(f"parameter {name}={short(value)}: expected {rule.describe()}")
    return out


def _check_dataset(value) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"parameter dataset={short(value)}: expected a descriptor's name or .yaml path "
                          "(several joined with '+')")
    try:
        parse_corpora(value)  # every descriptor loaded and checked
    except XlsrError as exc:
        raise ConfigError(f"parameter dataset={short(value)}: {exc}") from None
    return value


def _check_data_root(value):
    """auto, demo:<size> (a size the generator knows) or a folder (checked when 01 reads it); for
    several corpora, one of these per corpus joined with '+' (their count is checked against
    dataset's by ``check_parameters``)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"parameter data_root={short(value)}: expected 'auto', 'demo:tiny', 'demo:small' or a folder")
    try:
        parts = split_joined(value, "data_root")
    except XlsrError as exc:
        raise ConfigError(f"parameter {exc}") from None
    for part in parts:
        if part.startswith("demo:"):
            from xlsr_helpers.data.demo import SIZES  # numpy and scipy: only when a demo corpus is asked for
            if part[5:] not in SIZES:
                raise ConfigError(f"parameter data_root={short(value)}: expected one of {[f'demo:{s}' for s in SIZES]}")
    return value


def _check_corpus_roots(values: dict) -> list[str]:
    """One root per corpus (or auto) when dataset and data_root are both given; several corpora take
    their ASV scores each from its own descriptor (asv_scores auto or none)."""
    if not (isinstance(values.get("dataset"), str) and isinstance(values.get("data_root"), str)):
        return []
    try:
        specs = parse_corpora(values["dataset"], values["data_root"])
    except XlsrError as exc:
        return [f"parameter {exc}"]
    asv = values.get("asv_scores", "auto")
    if len(specs) > 1 and asv not in ("auto", "none"):
        return [f"parameter asv_scores={short(asv)}: dataset names {len(specs)} corpora, and each one's ASV scores "
                "come from its own descriptor and root; give 'auto' or 'none'"]
    return []


def stage_config(stage: int, namespace: dict, model: str) -> TrainConfig:
    """The TrainConfig of notebook 02 (stage 1) or 03 (stage 2) from its parameters, by ``STAGE_FIELDS``."""
    values = {field: namespace[param] for param, field in STAGE_FIELDS[stage].items() if param in namespace}
    values |= {name: namespace[name] for name in SHARED_FIELDS if name in namespace}
    values["segment_samples"] = int(namespace["segment_seconds"] * SAMPLE_RATE)
    return TrainConfig(stage=stage, model=model, **values)


def check_parameters(values: dict) -> dict:
    """Every parameter checked at once; one error lists all the bad ones."""
    out, problems = {}, []
    for name, value in values.items():
        try:
            out[name] = check_value(name, value)
        except ConfigError as exc:
            problems.append(str(exc))
    if not problems:
        problems = _check_corpus_roots(values)
    if problems:
        raise ConfigError("; ".join(problems))
    return out


def check_notebook_parameters(notebook: str, namespace: dict) -> None:
    """Check a notebook's declared parameters as the notebook holds them (run by hand or by papermill)."""
    check_parameters({k: namespace[k] for k in notebook_parameters(notebook) if k in namespace})


def _joined(value: str) -> list[str]:
    try:
        return split_joined(value, "value")
    except XlsrError:
        return [value]  # said by the parameter's own check


def _absolute_part(name: str, part: str, cwd: Path) -> str:
    """One corpus's descriptor or root: keywords, descriptor names and absolute paths stay."""
    if part in ("auto", "none") or part.startswith(("demo:", "/", "~")):
        return part
    if name == "dataset" and not part.endswith((".yaml", ".yml")):
        return part  # a descriptor of data_manifest/ by name
    return str((cwd / part).resolve())


def absolute_paths(values: dict, cwd: Path) -> dict:
    """Relative path parameters resolved against the user's working directory (papermill runs the
    notebooks from the repository); keywords (auto, demo:..., tiny-random) and hub ids stay."""
    out = dict(values)
    for name in PATH_PARAMETERS:
        v = out.get(name)
        if name in ("dataset", "data_root") and isinstance(v, str) and v:  # several corpora: each part on its own
            out[name] = "+".join(_absolute_part(name, p, cwd) for p in _joined(v))
            continue
        if not isinstance(v, str) or not v or v in ("auto", "none") or v.startswith(("demo:", "/", "~")) or v == TINY_RANDOM:
            continue
        if name == "base_model" and not (cwd / v).exists():
            continue  # a hub id such as facebook/wav2vec2-xls-r-300m
        out[name] = str((cwd / v).resolve())
    if isinstance(out.get("eval_datasets"), str):
        out["eval_datasets"] = _absolute_roots(out["eval_datasets"], cwd)
    return out


def _absolute_roots(text: str, cwd: Path) -> str:
    """``eval_datasets`` with each relative root (``in-the-wild=data/itw``) resolved against ``cwd``."""
    parts = []
    for part in text.split(","):
        dataset, eq, root = (s.strip() for s in part.partition("="))
        if dataset.endswith((".yaml", ".yml")) and not dataset.startswith(("/", "~")):
            dataset = str((cwd / dataset).resolve())
        if eq and root and root != "auto" and not root.startswith(("/", "~")):
            root = str((cwd / root).resolve())
        parts.append(f"{dataset}={root}" if eq else dataset)
    return ", ".join(parts)
