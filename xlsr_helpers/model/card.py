"""What a detector folder carries besides its weights: its settings and a model card.

``xlsr_detector.json`` holds what scoring must match (sample rate, training segment, the window,
hop and aggregation to score with), the dev EER threshold, the calibration fitted on dev, the
metrics it reached and the manifests it was trained on, as a Hugging Face model carries its
preprocessor config. ``README.md`` is the model card the Hub shows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from xlsr_helpers import __version__
from xlsr_helpers.data.audio import SAMPLE_RATE

SETTINGS_FILE = "xlsr_detector.json"
LICENCES = {"facebook/wav2vec2-xls-r-300m": "Apache-2.0", "asvspoof2019-la": "ODC-By 1.0",
            "asvspoof2021-la": "ODC-By 1.0", "asvspoof2021-df": "ODC-By 1.0", "asvspoof5": "CC BY 4.0",
            "in-the-wild": "see the In-the-Wild release (research use)"}


def read_settings(detector_dir: str | Path) -> dict:
    """The detector's settings, or {} for a folder written before they existed (or by other tools)."""
    path = Path(detector_dir) / SETTINGS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


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


def model_card(settings: dict) -> str:
    """A Hugging Face model card (YAML header + markdown) from the settings."""
    base = settings.get("base_model", "facebook/wav2vec2-xls-r-300m")
    datasets = settings.get("trained_on", {}).get("datasets", [])
    dev = settings.get("dev", {})
    cal = settings.get("calibration")
    scoring = settings.get("scoring", {})
    seg = settings.get("segment_samples", 0) / SAMPLE_RATE
    rows = [("dev EER", f"{100 * dev['eer']:.3f} %" if "eer" in dev else "-"),
            ("dev EER threshold (score)", f"{dev['threshold']:.6g}" if "threshold" in dev else "-"),
            ("dev min DCF (ASVspoof 5 costs)", f"{dev['min_dcf']:.4f}" if "min_dcf" in dev else "-"),
            ("dev Cllr, calibrated (bits)", f"{dev['cllr_calibrated']:.4f}" if "cllr_calibrated" in dev else "-")]
    licences = "\n".join(f"- `{name}`: {LICENCES.get(name, 'see its source')}" for name in [base, *datasets])
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
  windows of {scoring.get('window', 0) / SAMPLE_RATE:g} s every {scoring.get('hop', 0) / SAMPLE_RATE:g} s,
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


def push_detector(detector_dir: str | Path, repo_id: str, private: bool = True, token: str | None = None,
                  message: str = "Upload XLS-R deepfake detector") -> str:
    """Publish a detector folder (weights, feature extractor, settings, card) to the Hugging Face Hub."""
    from huggingface_hub import HfApi

    from xlsr_helpers.core.errors import ConfigError
    folder = Path(detector_dir)
    missing = [f for f in ("config.json", "model.safetensors", "preprocessor_config.json", SETTINGS_FILE)
               if not (folder / f).is_file()]
    if missing:
        raise ConfigError(f"{folder} is not a saved detector folder (missing {missing}); push a stage's detector/")
    if not (folder / "README.md").is_file():
        write_model_card(folder, read_settings(folder))
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", commit_message=message)
    return str(getattr(info, "commit_url", None) or f"https://huggingface.co/{repo_id}")
