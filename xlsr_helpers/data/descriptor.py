"""Corpus descriptors (``data_manifest/*.yaml``): found by name or path, and checked on load.

A descriptor is the one place that says how a corpus is laid out (see ``data_manifest/README.md``).
A user's own descriptor with a typo fails here, naming the file and the field, before any protocol
is read, instead of as a ``KeyError`` half-way through a manifest.
"""

from __future__ import annotations

from pathlib import Path
from string import Formatter

import yaml

from xlsr_helpers.core.errors import ManifestError
from xlsr_helpers.core.resources import DESCRIPTOR_DIR
from xlsr_helpers.data.labels import LABELS

FORMATS = ("whitespace", "csv", "folder")
FIELDS = {"name", "format", "columns", "label_column", "label_map", "attack_bonafide", "splits", "roots",
          "asv_scores", "asv_2021", "extensions", "csv_name", "primary_metric"}
PRIMARY_METRICS = ("eer", "min_tdcf", "min_dcf")  # a corpus's official headline metric (04's results table)
REQUIRED = {"whitespace": ("columns",), "csv": ("columns",), "folder": ("csv_name", "extensions")}


def available_datasets() -> list[str]:
    return sorted(p.stem for p in DESCRIPTOR_DIR.glob("*.yaml"))


def load_descriptor(name_or_path: str | Path) -> dict:
    """Read a descriptor by dataset name (``asvspoof2019-la``) or by YAML path, and check it."""
    p = Path(name_or_path)
    if p.suffix and not p.is_file():
        raise ManifestError(f"descriptor {p} is not a file; or name one of {available_datasets()}")
    if not p.suffix:
        p = DESCRIPTOR_DIR / f"{name_or_path}.yaml"
        if not p.is_file():
            raise ManifestError(f"unknown dataset {name_or_path!r}: choose one of {available_datasets()}")
    try:
        desc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{p}: not valid YAML (UTF-8): {exc}") from None
    problems = descriptor_problems(desc)
    if problems:
        raise ManifestError(f"{p}: bad descriptor: " + "; ".join(problems) + " (fields: data_manifest/README.md)")
    return desc


def _str_list(value) -> bool:
    return isinstance(value, list) and len(value) > 0 and all(isinstance(v, str) and v for v in value)


def descriptor_problems(desc) -> list[str]:
    """Every problem of a descriptor, each naming its field; empty when it is sound. A split's single
    protocol or audio string is turned into a list of one on the way (what the manifest reads)."""
    if not isinstance(desc, dict):
        return ["expected a mapping of fields at the top level"]
    problems = [f"unknown field {k!r}" for k in desc if k not in FIELDS]
    problems += [f"{k}: missing" for k in ("name", "format", "label_map", "splits") if k not in desc]
    fmt = desc.get("format")
    if "format" in desc and fmt not in FORMATS:
        problems.append(f"format: {fmt!r} is not one of {list(FORMATS)}")
        fmt = None
    problems += [f"{k}: missing (needed by format {fmt})" for k in REQUIRED.get(fmt, ()) if k not in desc]
    if fmt == "folder":
        if "csv_name" in desc and not (isinstance(desc["csv_name"], str) and desc["csv_name"]):
            problems.append(f"csv_name: expected a file name, got {desc['csv_name']!r}")
        if "extensions" in desc and not _str_list(desc["extensions"]):
            problems.append(f"extensions: expected a list such as ['.wav', '.flac'], got {desc['extensions']!r}")
    label_map = desc.get("label_map")
    if "label_map" in desc and not (isinstance(label_map, dict) and label_map
                                    and set(map(str, label_map.values())) <= set(LABELS)):
        problems.append(f"label_map: expected a mapping of key values to {list(LABELS)}, got {label_map!r}")
    splits = desc.get("splits")
    if "splits" in desc and not (isinstance(splits, dict) and splits):
        problems.append(f"splits: expected a mapping of split names to their files, got {splits!r}")
    elif isinstance(splits, dict) and fmt in ("whitespace", "csv") and "columns" in desc:
        problems += _protocol_problems(desc, splits)
    if "roots" in desc and not (desc["roots"] == [] or _str_list(desc["roots"])):
        problems.append(f"roots: expected a list of folder patterns, got {desc['roots']!r}")
    elif fmt == "folder" and desc.get("roots"):
        problems.append("roots: a folder corpus is not searched for (it has no protocol file): leave roots empty")
    if desc.get("primary_metric", "eer") not in PRIMARY_METRICS:
        problems.append(f"primary_metric: {desc['primary_metric']!r} is not one of {list(PRIMARY_METRICS)}")
    asv, asv21 = desc.get("asv_scores"), desc.get("asv_2021")
    if "asv_scores" in desc and not (isinstance(asv, dict) and all(isinstance(v, str) for v in asv.values())):
        problems.append(f"asv_scores: expected a mapping of split to ASV score file, got {asv!r}")
    if "asv_2021" in desc and not (isinstance(asv21, dict) and all(_str_list(asv21.get(k)) for k in ("keys", "scores"))):
        problems.append(f"asv_2021: expected keys and scores, each a list of candidate files, got {asv21!r}")
    return problems


def _protocol_problems(desc: dict, splits: dict) -> list[str]:
    """Columns, label column and each split's protocol candidates and audio templates."""
    columns = desc.get("columns")
    if desc["format"] == "whitespace":
        fields = columns if _str_list(columns) else None
    else:
        fields = list(columns.values()) if isinstance(columns, dict) and _str_list(list(columns.values())) else None
    if fields is None:
        kind = "a list of column names" if desc["format"] == "whitespace" else "a mapping of CSV header to field"
        return [f"columns: expected {kind}, got {columns!r}"]
    problems = []
    label_column = desc.get("label_column", "label")
    if label_column not in fields:
        problems.append(f"label_column: {label_column!r} is not one of the columns {fields}")
    if "utt_id" not in fields and "utt_file" not in fields:
        problems.append(f"columns: none is utt_id or utt_file, so trials have no id ({fields})")
    known = set(fields) | {"utt_id"}
    for split, spec in splits.items():
        where = f"splits.{split}"
        if not isinstance(spec, dict):
            problems.append(f"{where}: expected protocol and audio, got {spec!r}")
            continue
        for key, what in (("protocol", "a path"), ("audio", "a path template")):
            if isinstance(spec.get(key), str):
                spec[key] = [spec[key]]  # one candidate: the same as a list of one
            if not _str_list(spec.get(key)):
                problems.append(f"{where}.{key}: expected {what} or a list of them, got {spec.get(key)!r}")
        for t in spec["audio"] if _str_list(spec.get("audio")) else []:
            try:
                unknown = sorted({f for _, f, _, _ in Formatter().parse(t) if f is not None} - known)
            except ValueError as exc:
                problems.append(f"{where}.audio: {t!r} is not a path template: {exc}")
                continue
            if unknown:
                problems.append(f"{where}.audio: {t!r} uses {unknown}, which are not columns ({sorted(known)})")
    return problems
