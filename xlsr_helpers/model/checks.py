"""What a model folder must hold before it loads, and what its loading report may say.

A copy cut short (a zero-byte or truncated ``model.safetensors``), a ``config.json`` that is not JSON
or does not match the weights, pickle-only weights in a detector folder or a feature extractor at
another sampling rate each become one ``ModelLoadError`` naming the file, not a traceback from
safetensors or transformers.
"""

from __future__ import annotations

import json
import logging
import pickle
import re
from contextlib import contextmanager
from pathlib import Path

from xlsr_helpers.core.errors import XlsrError, short_text
from xlsr_helpers.core.textfile import read_text
from xlsr_helpers.data.audio import SAMPLE_RATE

log = logging.getLogger(__name__)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
HEADER_LIMIT = 100 * 2**20  # safetensors refuses larger headers too
ARCHITECTURE_PARTS = re.compile(r"(^|\.)(encoder\.layers|feature_extractor\.conv_layers)\.\d+\.")
ENCODER_PREFIX = "wav2vec2."  # every other weight belongs to the head that training adds


class ModelLoadError(XlsrError, OSError):
    """A model that cannot be loaded from the given folder or hub id."""


def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object; ``ModelLoadError`` naming the file and line otherwise."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object {{...}}, found {type(data).__name__}")
    return data


def check_model_files(folder: Path, detector: bool) -> None:
    """config.json, the weights and the feature extractor of a local model folder, before anything
    loads; ``detector``: a trained detector to score or publish (its weights must be safetensors)."""
    config = read_json_object(folder / "config.json")
    if not isinstance(config.get("model_type"), str):
        raise ModelLoadError(f"{folder / 'config.json'}: no model_type: not a transformers model config")
    check_weight_files(folder, detector)
    check_feature_extractor(folder)


def check_weight_files(folder: Path, detector: bool) -> None:
    tensors = sorted(folder.glob("*.safetensors"))
    pickles = sorted(f.name for f in folder.iterdir() if f.suffix in PICKLE_SUFFIXES and f.is_file())
    if not tensors and not pickles:
        raise ModelLoadError(f"{folder} holds config.json but no weights (model.safetensors); copy the whole folder")
    if not tensors and detector:
        raise ModelLoadError(f"{folder} holds only pickle weights ({', '.join(pickles[:3])}); a detector is read from "
                             "model.safetensors, which cannot run code: load it once in Python and save it with "
                             "save_pretrained(folder) (safetensors)")
    for path in tensors:
        check_safetensors(path)


def check_safetensors(path: Path) -> None:
    """The file holds its whole header and every tensor the header lists (a copy cut short does not)."""
    size = path.stat().st_size
    again = "the copy or download was cut short: copy it again"
    if size == 0:
        raise ModelLoadError(f"{path} is empty (0 bytes); {again}")
    with path.open("rb") as fh:
        n = int.from_bytes(fh.read(8), "little") if size >= 8 else size
        if size < 8 or 8 + n > size:
            raise ModelLoadError(f"{path} is truncated ({size} bytes, shorter than its own header); {again}")
        if n > HEADER_LIMIT:
            raise ModelLoadError(f"{path} is not a safetensors file (header of {n} bytes)")
        header = fh.read(n)
    end = _data_end(header)
    if end is None:
        raise ModelLoadError(f"{path} is not a safetensors file (its header is not readable)")
    if 8 + n + end > size:
        raise ModelLoadError(f"{path} is truncated: it holds {size} of {8 + n + end} bytes; {again}")


def _data_end(header: bytes) -> int | None:
    """Where the last tensor ends (bytes after the header), or None for a header that is not safetensors'."""
    try:
        entries = json.loads(header)
        ends = [int(v["data_offsets"][1]) for k, v in entries.items() if k != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None
    return max(ends, default=0)


def check_feature_extractor(folder: Path) -> None:
    """A folder's ``preprocessor_config.json`` (when it has one) reads 16 kHz mono audio, as scoring
    and training feed it; another rate would be refused by transformers at the first batch."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return
    fe = read_json_object(path)
    rate = fe.get("sampling_rate", SAMPLE_RATE)
    if rate != SAMPLE_RATE:
        raise ModelLoadError(f"{path}: sampling_rate {short_text(rate, 40)}; XLS-R models take {SAMPLE_RATE} Hz audio "
                             f"(xlsr resamples every input to {SAMPLE_RATE}): set sampling_rate to {SAMPLE_RATE} or "
                             "delete the file to use the XLS-R defaults")
    if fe.get("feature_size", 1) != 1:
        raise ModelLoadError(f"{path}: feature_size {short_text(fe['feature_size'], 40)}; a wav2vec2 feature extractor "
                             "reads raw audio (feature_size 1)")


@contextmanager
def loading_named(name_or_path, what: str = "model"):
    """Errors raised while transformers reads a folder or hub id, as one ``ModelLoadError`` line; its
    loading report (a table on stderr) is left out: ``check_loading_info`` says what matters."""
    from huggingface_hub.errors import StrictDataclassError  # a config.json field of the wrong type
    from safetensors import SafetensorError  # safetensors: only while a model loads; checks stays free of it
    from transformers.utils import logging as hf_logging  # transformers: only while a model loads
    report = hf_logging.get_logger("transformers.modeling_utils")
    report.addFilter(_no_load_report)  # a filter, not a level: transformers reads the level for other warnings
    try:
        yield
    except ModelLoadError:
        raise
    except (OSError, ValueError, RuntimeError, TypeError, EOFError, pickle.UnpicklingError, SafetensorError,
            StrictDataclassError) as exc:
        reason = " ".join(str(exc).split())
        raise ModelLoadError(f"cannot load the {what} {short_text(name_or_path, 200)}: {type(exc).__name__}: "
                             f"{short_text(reason, 300)}; give a local folder with config.json + model.safetensors, "
                             "or a hub id with network access (on Kaggle: Settings > Internet on, or add the model "
                             "as an input and set base_model to its folder)") from None
    finally:
        report.removeFilter(_no_load_report)


def _no_load_report(record: logging.LogRecord) -> bool:
    return "LOAD REPORT" not in str(record.msg)


def check_loading_info(name_or_path, info: dict, trained: bool) -> None:
    """Refuse weights that do not fit the config (other sizes, other layer counts); ``trained``: the head
    must come from the weights too, and nothing else may be left over."""
    where = short_text(name_or_path, 200)
    mismatched = sorted(info.get("mismatched_keys") or [], key=lambda m: m[0])
    if mismatched:
        key, in_file, in_config = mismatched[0]
        raise ModelLoadError(f"{where}: config.json does not match the weights: {key} is {list(in_file)} in the weights "
                             f"but {list(in_config)} by config.json ({len(mismatched)} weight(s) differ); use the "
                             "config.json saved with these weights")
    missing = sorted(info.get("missing_keys") or [])
    head = [k for k in missing if not k.startswith(ENCODER_PREFIX)]
    if trained and head:
        raise ModelLoadError(f"{where} is not a trained detector: these weights are missing: {head} "
                             "(train it with notebooks 02/03 or `xlsr train`, and score the stage's detector/ folder)")
    # a saved detector holds its whole encoder; a base model may lack parts transformers initialises itself
    absent = [k for k in missing if ARCHITECTURE_PARTS.search(k) or (trained and k.startswith(ENCODER_PREFIX))]
    extra = [k for k in sorted(info.get("unexpected_keys") or []) if ARCHITECTURE_PARTS.search(k)]
    if absent or (extra and trained):
        key, side = (absent[0], "config.json declares it, the weights lack it") if absent else \
            (extra[0], "the weights hold it, config.json has no place for it")
        raise ModelLoadError(f"{where}: config.json does not match the weights: {key}: {side} "
                             f"({len(absent or extra)} such weight(s)); use the config.json saved with these weights")
    if extra:
        log.warning("%s: the weights hold %d tensor(s) of layers that config.json does not declare (e.g. %s); they "
                    "are not used", where, len(extra), extra[0])
