"""What a detector folder carries besides its weights: its settings and a model card.

``xlsr_detector.json`` holds what scoring must match (sample rate, training segment, the window,
hop and aggregation to score with), the dev EER threshold, the calibration fitted on dev, the
metrics it reached and the manifests it was trained on, as a Hugging Face model carries its
preprocessor config. ``README.md`` is the model card the Hub shows.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import huggingface_hub
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from xlsr_helpers import __version__
from xlsr_helpers.core.errors import XlsrError, short, short_text
from xlsr_helpers.data.audio import SAMPLE_RATE
from xlsr_helpers.model.checks import ModelLoadError, read_json_object
from xlsr_helpers.model.loading import load_feature_extractor, load_trained_detector

SETTINGS_FILE = "xlsr_detector.json"
DEFAULT_BASE = "facebook/wav2vec2-xls-r-300m"  # what a card names when the settings record no base model
LICENCES = {"facebook/wav2vec2-xls-r-300m": "Apache-2.0", "asvspoof2019-la": "ODC-By 1.0",
            "asvspoof2021-la": "ODC-By 1.0", "asvspoof2021-df": "ODC-By 1.0", "asvspoof5": "CC BY 4.0",
            "in-the-wild": "see the In-the-Wild release (research use)"}


def read_settings(detector_dir: str | Path) -> dict:
    """The detector's settings, or {} for a folder written before they existed (or by other tools); a
    file that is not JSON, not an object, or holds a field of the wrong kind is refused, named."""
    path = Path(detector_dir) / SETTINGS_FILE
    if not path.is_file():
        return {}
    settings = read_json_object(path)
    found = settings_problems(settings)
    if found:
        raise ModelLoadError(f"{path}: {'; '.join(found[:3])}; fix the file or save the detector again")
    return settings


NUMBER, COUNT, TEXT, OBJECT, TEXTS = "a number", "a positive integer", "text", "an object {...}", "a list of text"
FIELDS = {"sample_rate": COUNT, "segment_samples": COUNT, "stage": COUNT, "head": TEXT, "base_model": TEXT,
          "pad": TEXT, "crop": TEXT, "scoring": OBJECT, "dev": OBJECT, "calibration": OBJECT, "trained_on": OBJECT,
          "training": OBJECT}
SECTIONS = {"scoring": {"window": COUNT, "hop": COUNT, "aggregation": TEXT},
            "dev": {k: NUMBER for k in ("eer", "threshold", "min_dcf", "cllr_raw", "cllr_calibrated")},
            "calibration": {"scale": NUMBER, "offset": NUMBER, "prior_spoof": NUMBER, "fitted_on": TEXT,
                            "n_bonafide": COUNT, "n_spoof": COUNT, "method": TEXT},
            "trained_on": {"datasets": TEXTS, "corpora": TEXTS}}
CALIBRATION_NEEDS = ("scale", "offset", "prior_spoof", "fitted_on", "n_bonafide", "n_spoof")


def settings_problems(settings: dict) -> list[str]:
    """One line per field of ``xlsr_detector.json`` that scoring or the model card could not use."""
    found = [f"{k} is {short(settings[k])}; expected {kind}" for k, kind in FIELDS.items()
             if k in settings and not _is(settings[k], kind, none=k == "calibration")]
    for section, fields in SECTIONS.items():
        values = settings.get(section)
        if not isinstance(values, dict):
            continue
        found += [f"{section}.{k} is {short(v)}; expected {fields[k]}" for k, v in values.items()
                  if k in fields and not _is(v, fields[k], none=section == "scoring" and k != "aggregation")]
        if section == "calibration":
            found += [f"calibration: unknown field {short(k)}" for k in values if k not in fields]
            found += [f"calibration.{k} is missing" for k in CALIBRATION_NEEDS if k not in values]
    if not found and settings.get("sample_rate", SAMPLE_RATE) != SAMPLE_RATE:
        found.append(f"sample_rate is {settings['sample_rate']}; XLS-R detectors take {SAMPLE_RATE} Hz audio")
    return found


def _is(value, kind: str, none: bool = False) -> bool:
    if value is None:
        return none
    if kind == TEXT:
        return isinstance(value, str)
    if kind == OBJECT:
        return isinstance(value, dict)
    if kind == TEXTS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return kind == NUMBER or (isinstance(value, int) and value > 0)


def write_settings(detector_dir: str | Path, settings: dict) -> Path:
    path = Path(detector_dir) / SETTINGS_FILE
    path.write_text(json.dumps({"format": 1, "sample_rate": SAMPLE_RATE, "xlsr_helpers": __version__,
                                "created": time.strftime("%Y-%m-%d %H:%M:%S"), **settings}, indent=2, default=float))
    return path


def base_model_of(model: str | Path) -> str:
    """The pretrained encoder a model started from: a stage-1 detector's own base model, or itself."""
    return read_settings(model).get("base_model", str(model)) if Path(model).is_dir() else str(model)


_HEAD_NOTE = """
This head is not part of transformers: `pip install xlsr-helpers` (or put its folder on the path)
and `import xlsr_helpers` before `AutoModelForAudioClassification.from_pretrained` or `pipeline`.
"""


def licences_of(settings: dict) -> list[tuple[str, str]]:
    """(name, licence) of the base model and of each training corpus, as the model card lists them."""
    names = [settings.get("base_model", DEFAULT_BASE), *settings.get("trained_on", {}).get("datasets", [])]
    return [(name, LICENCES.get(name, "see its source")) for name in names]


def model_card(settings: dict) -> str:
    """A Hugging Face model card (YAML header + markdown) from the settings."""
    base = settings.get("base_model", DEFAULT_BASE)
    datasets = settings.get("trained_on", {}).get("datasets", [])
    dev = settings.get("dev", {})
    cal = settings.get("calibration")
    scoring = settings.get("scoring", {})
    seg = settings.get("segment_samples", 0) / SAMPLE_RATE
    rows = [("dev EER", f"{100 * dev['eer']:.3f} %" if "eer" in dev else "-"),
            ("dev EER threshold (score)", f"{dev['threshold']:.6g}" if "threshold" in dev else "-"),
            ("dev min DCF (ASVspoof 5 costs)", f"{dev['min_dcf']:.4f}" if "min_dcf" in dev else "-"),
            ("dev Cllr, calibrated (bits)", f"{dev['cllr_calibrated']:.4f}" if "cllr_calibrated" in dev else "-")]
    licences = "\n".join(f"- `{name}`: {licence}" for name, licence in licences_of(settings))
    calibration = (f"`llr = {cal['scale']:.6g} * score + {cal['offset']:.6g}` ({cal['method']}, fitted on "
                   f"{cal['fitted_on']}); `p_spoof` needs a stated prior" if cal else
                   "none: the scores are not probabilities")
    header = "\n".join(["---", "library_name: transformers", "pipeline_tag: audio-classification",
                        "license: apache-2.0", f"base_model: {base}",
                        "tags: [audio-classification, anti-spoofing, audio-deepfake-detection, asvspoof, xls-r]", "---"])
    return f"""{header}

# XLS-R audio deepfake detector (stage {settings.get('stage', '?')})

Tells bona fide speech from spoofed (synthesised or converted) speech. `{base}` fine-tuned with
xlsr-helpers ({settings.get('xlsr_helpers', '')}) with the `{settings.get('head', 'linear')}` head: stage 1
trains the head on the frozen encoder, stage 2 also the top transformer layers.
{'' if settings.get('head', 'linear') == 'linear' else _HEAD_NOTE}
Score = `logit[bonafide] - logit[spoof]`, higher = more bona fide (the ASVspoof convention).

## Training
- data: {', '.join(datasets) or 'not recorded'} (manifest fingerprints in `xlsr_detector.json`)
- segments: {seg:g} s at {SAMPLE_RATE} Hz, pad `{settings.get('pad', '?')}`, crop `{settings.get('crop', '?')}`
- recipe: {json.dumps(settings.get('training', {}))}

## Results on the dev split (model selection; eval never used)
| metric | value |
|---|---|
""" + "\n".join(f"| {k} | {v} |" for k, v in rows) + f"""

## Scoring
- `xlsr score MODEL_DIR files... --out scores.csv` reads the settings below from `xlsr_detector.json`:
  windows of {(scoring.get('window') or 0) / SAMPLE_RATE:g} s every {(scoring.get('hop') or 0) / SAMPLE_RATE:g} s,
  window scores combined by `{scoring.get('aggregation', 'mean')}`.
- `transformers.pipeline("audio-classification", model=MODEL_DIR)` scores a clip in one pass, not in
  windows: it gives the same score as `xlsr score` for clips up to one window; for longer clips use `xlsr score`.
- Calibration: {calibration}.

## Intended use and limits
Research on spoofing countermeasures and a first screen of audio. Not a forensic tool: scores
degrade on attacks, codecs, channels and languages unlike the training data; check it on data like
yours (EER, min DCF) and calibrate on a labelled sample of it before trusting `p_spoof`.

## Licences
{licences}
"""


def write_model_card(detector_dir: str | Path, settings: dict) -> Path:
    path = Path(detector_dir) / "README.md"
    path.write_text(model_card(settings))
    return path


class PushError(XlsrError, RuntimeError):
    """A detector that cannot be published: the repo id, the credentials, the folder or the Hub said no."""


def check_repo_id(repo_id: str) -> None:
    """A Hub repo id (``you/name``: letters, digits, '-', '_', '.'; at most 96 characters), checked here:
    huggingface_hub's own message quotes the id whole."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise PushError(f"repo id {short(repo_id)} is not a Hub repo id: expected you/name (letters, digits, "
                        "'-', '_' and '.', not starting or ending with '-' or '.', at most 96 characters)") from None


def hub_token(token: str | None) -> str:
    """The token to push with (given, else HF_TOKEN or the saved login), found before any network call."""
    token = token or huggingface_hub.get_token()  # looked up here: the tests replace it
    if not token:
        raise PushError("no Hugging Face token: run `hf auth login`, set HF_TOKEN, or give --token "
                        "(a token with write access: https://huggingface.co/settings/tokens)")
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise PushError("HF_HUB_OFFLINE is set: pushing needs the network; unset it (on Kaggle: Internet on)")
    return token


def check_pushable(folder: Path) -> None:
    """The folder holds a whole detector that loads (before anything is uploaded)."""
    missing = [f for f in ("config.json", "model.safetensors", "preprocessor_config.json", SETTINGS_FILE)
               if not (folder / f).is_file()]
    if missing:
        raise PushError(f"{folder} is not a saved detector folder (missing {missing}); push a stage's detector/")
    read_settings(folder)
    load_trained_detector(folder)
    load_feature_extractor(folder)


def push_detector(detector_dir: str | Path, repo_id: str, private: bool = True, token: str | None = None,
                  message: str = "Upload XLS-R deepfake detector") -> str:
    """Publish a detector folder (weights, feature extractor, settings, card) to the Hugging Face Hub.
    The repo id, the folder (it must load) and the credentials are checked before any network call."""
    check_repo_id(repo_id)
    folder = Path(detector_dir)
    check_pushable(folder)
    api = huggingface_hub.HfApi(token=hub_token(token))
    if not (folder / "README.md").is_file():
        write_model_card(folder, read_settings(folder))
    return upload_folder(api, folder, repo_id, "model", private, message)


def upload_folder(api, folder: Path, repo_id: str, repo_type: str, private: bool, message: str, **create) -> str:
    """Create the repo (if new) and upload ``folder``; a Hub or network failure becomes one ``PushError``
    line. Returns the commit's address. ``create``: further ``create_repo`` arguments (``space_sdk``)."""
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type=repo_type, **create)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, commit_message=message)
    except Exception as exc:  # the network or the Hub (a refused token, no write access, a lost connection)
        reason = " ".join(str(exc).split())
        raise PushError(f"pushing {folder} to {repo_id} failed: {type(exc).__name__}: {short_text(reason, 300)}") \
            from None
    prefix = "spaces/" if repo_type == "space" else ""
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/{prefix}{repo_id}")
