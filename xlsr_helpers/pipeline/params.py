"""Notebook parameters: allowed types and values, checked before any work (runner and notebooks).

A value from a preset, ``--set`` or papermill is checked against its rule here, so that
``s1_epochs=abc`` stops ``xlsr run`` before notebook 01 runs, naming the parameter and what it
accepts. Numbers written as strings (YAML reads ``1e-3`` as a string) are accepted and converted.
"""

from __future__ import annotations

import math
from pathlib import Path

from xlsr_helpers.core.errors import ConfigError, XlsrError

POSITIVE_INT = ("int", 1)
NON_NEGATIVE_INT = ("int", 0)
POSITIVE_FLOAT = ("float", 0.0)
TINY_RANDOM = "tiny-random"  # base_model value: a random-initialised tiny wav2vec2 (demo and tests)
PATH_PARAMETERS = ("run_dir", "data_root", "detector", "cache_dir", "base_model", "resume_from", "s2_noise_dir",
                   "s2_rir_dir", "dataset")
RULES: dict[str, tuple] = {
    "s1_epochs": POSITIVE_INT, "s2_epochs": POSITIVE_INT, "s1_batch_size": POSITIVE_INT,
    "s2_batch_size": POSITIVE_INT, "s2_grad_accum": POSITIVE_INT, "eval_batch_size": POSITIVE_INT,
    "score_batch_size": POSITIVE_INT, "s2_top_layers": POSITIVE_INT, "duration_sample": POSITIVE_INT,
    "s1_patience": NON_NEGATIVE_INT, "s2_patience": NON_NEGATIVE_INT, "num_workers": NON_NEGATIVE_INT,
    "seed": NON_NEGATIVE_INT, "max_trials_per_split": ("int_or_none", 2),
    "s1_learning_rate": POSITIVE_FLOAT, "s2_learning_rate": POSITIVE_FLOAT,
    "segment_seconds": ("float", 0.025),  # >= 400 samples at 16 kHz
    "allow_missing": ("bool",), "check_audio": ("bool",), "grad_checkpointing": ("bool",),
    "cache": ("choice", ("auto", "on", "off")), "precision": ("choice", ("auto", "fp32", "fp16", "bf16")),
    "device": ("choice", ("auto", "cuda", "cpu")), "aggregation": ("choice", ("mean", "max", "min", "median")),
    "phase": ("choice", ("eval", "progress", "hidden_track", "all")), "on_change": ("choice", ("refuse", "restart")),
    "score_window_seconds": ("float_or_auto", 0.025), "bootstrap": NON_NEGATIVE_INT, "worst_examples": NON_NEGATIVE_INT,
    "prior_spoof": ("probability",), "s2_encoder_learning_rate": ("float_or_none", 0.0),
    "s2_layer_decay": ("probability_incl",), "s2_average_top_k": POSITIVE_INT,
}
RULES["score_hop_seconds"] = ("float_or_auto", 0.025)
RULES["head"] = ("head",)  # 'auto' or a registered head (heads/), looked up when checked
RULES["dataset"] = ("dataset",)  # a descriptor's name or path, loaded (and so checked) when checked
RULES["aggregation"] = ("choice", ("auto", "mean", "max", "min", "median"))
RULES["data_root"] = ("data_root",)  # auto, demo:<size> (a size the generator knows) or a folder


def check_value(name: str, value):
    """The value converted to its rule's type; ``ConfigError`` naming the parameter when it does not fit."""
    rule = RULES.get(name)
    if rule is None:
        return value  # free-form strings (paths, ids): checked where they are used
    kind = rule[0]
    if name == "cache" and isinstance(value, bool):  # YAML reads on/off as booleans
        value = "on" if value else "off"
    if kind == "choice":
        if value in rule[1]:
            return value
        raise ConfigError(f"parameter {name}={value!r}: expected one of {list(rule[1])}")
    if kind == "head":
        from xlsr_helpers.model.heads import HEADS  # imports torch: only when a head is given
        if value in ("auto", *HEADS):
            return value
        raise ConfigError(f"parameter head={value!r}: expected 'auto' or one of {sorted(HEADS)}")
    if kind == "dataset":
        from xlsr_helpers.data.descriptor import load_descriptor
        if not isinstance(value, str) or not value:
            raise ConfigError(f"parameter dataset={value!r}: expected a descriptor's name or .yaml path")
        try:
            load_descriptor(value)
        except XlsrError as exc:
            raise ConfigError(f"parameter dataset={value!r}: {exc}") from None
        return value
    if kind == "data_root":
        return _data_root(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ConfigError(f"parameter {name}={value!r}: expected True or False")
    if kind == "int_or_none" and value is None:
        return None
    if kind == "float_or_none":
        return None if value is None else _number(name, value, "float", rule[1])
    if kind == "probability_incl":
        v = _number(name, value, "float", 0.0)
        if v > 1:
            raise ConfigError(f"parameter {name}={value!r}: expected a number in (0, 1]")
        return v
    if kind == "float_or_auto":
        return "auto" if value == "auto" else _number(name, value, "float", rule[1])
    if kind == "probability":
        v = _number(name, value, "float", 0.0)
        if v >= 1:
            raise ConfigError(f"parameter {name}={value!r}: expected a number in (0, 1)")
        return v
    return _number(name, value, kind, rule[1])


def _data_root(value):
    if not isinstance(value, str) or not value:
        raise ConfigError(f"parameter data_root={value!r}: expected 'auto', 'demo:tiny', 'demo:small' or a folder")
    if value.startswith("demo:"):
        from xlsr_helpers.data.demo import SIZES  # numpy and scipy: only when a demo corpus is asked for
        if value[5:] not in SIZES:
            raise ConfigError(f"parameter data_root={value!r}: expected one of {[f'demo:{s}' for s in SIZES]}")
    return value


def _number(name: str, value, kind: str, minimum: float):
    v = value
    if isinstance(v, str):
        try:
            v = float(v) if kind == "float" else int(v)
        except ValueError:
            v = None
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if kind != "float":
        ok = ok and float(v).is_integer()
        v = int(v) if ok else v
    if not ok or v < minimum or (kind == "float" and v <= 0):
        bound = f"> {minimum:g}" if kind == "float" and minimum <= 0 else f">= {minimum:g}"
        what = ("a number " if kind == "float" else "an integer ") + bound
        raise ConfigError(f"parameter {name}={value!r}: expected {what}" + (" or None" if kind == "int_or_none" else ""))
    return float(v) if kind == "float" else v


def check_parameters(values: dict) -> dict:
    """Every parameter checked at once; one error lists all the bad ones."""
    out, problems = {}, []
    for name, value in values.items():
        try:
            out[name] = check_value(name, value)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("; ".join(problems))
    return out


def check_notebook_parameters(notebook: str, namespace: dict) -> None:
    """Check a notebook's declared parameters as the notebook holds them (run by hand or by papermill)."""
    from xlsr_helpers.pipeline.notebooks import notebook_parameters
    check_parameters({k: namespace[k] for k in notebook_parameters(notebook) if k in namespace})


def absolute_paths(values: dict, cwd: Path) -> dict:
    """Relative path parameters resolved against the user's working directory (papermill runs the
    notebooks from the repository); keywords (auto, demo:..., tiny-random) and hub ids stay."""
    out = dict(values)
    for name in PATH_PARAMETERS:
        v = out.get(name)
        if not isinstance(v, str) or not v or v == "auto" or v.startswith(("demo:", "/", "~")) or v == TINY_RANDOM:
            continue
        if name == "base_model" and not (cwd / v).exists():
            continue  # a hub id such as facebook/wav2vec2-xls-r-300m
        if name == "dataset" and not v.endswith((".yaml", ".yml")):
            continue  # a descriptor of data_manifest/ by name
        out[name] = str((cwd / v).resolve())
    return out
