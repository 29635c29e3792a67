"""A model folder never runs its own code: settings that ask for it (``auto_map``, ``custom_pipelines``)
are refused by every loader and command, even when the user would answer transformers' "run the
custom code?" prompt with y; the payload below writes a marker file if it is ever imported."""

import builtins
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from xlsr_helpers.cli.main import main
from xlsr_helpers.model.loading import (
    ModelLoadError,
    _load_config,
    load_detector,
    load_feature_extractor,
    load_trained_detector,
)

PAYLOAD = '''from pathlib import Path
Path({marker!r}).write_text("the model folder's code ran")
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForSequenceClassification


class EvilConfig(Wav2Vec2Config):
    model_type = "evil-detector"


class EvilModel(Wav2Vec2ForSequenceClassification):
    config_class = EvilConfig


class EvilFE(Wav2Vec2FeatureExtractor):
    pass
'''

# (settings file, what is changed in it): a type only the folder's code defines, a stock type that
# still names code, a feature extractor of its own, a custom pipeline
VARIANTS = {
    "unknown model type": ("config.json", {"model_type": "evil-detector", "auto_map": {
        "AutoConfig": "evil.EvilConfig", "AutoModelForAudioClassification": "evil.EvilModel"}}),
    "stock type with auto_map": ("config.json", {"auto_map": {"AutoModelForAudioClassification": "evil.EvilModel"}}),
    "own feature extractor": ("preprocessor_config.json", {"feature_extractor_type": "EvilFE",
                                                           "auto_map": {"AutoFeatureExtractor": "evil.EvilFE"}}),
    "custom pipeline": ("config.json", {"custom_pipelines": {"audio-classification": {"impl": "evil.EvilModel"}}}),
}


@pytest.fixture
def says_yes(monkeypatch, tmp_path):
    """A user who answers y to every prompt; transformers' module cache kept inside the test."""
    import transformers.dynamic_module_utils as dmu
    monkeypatch.setattr(builtins, "input", lambda *a, **k: "y")
    monkeypatch.setattr(dmu, "HF_MODULES_CACHE", str(tmp_path / "hf-modules"))
    return tmp_path / "PAYLOAD-RAN"


def payload_folder(detector, tmp_path, marker, variant):
    folder = shutil.copytree(detector, tmp_path / "downloaded")
    (folder / "evil.py").write_text(PAYLOAD.format(marker=str(marker)))
    name, changes = VARIANTS[variant]
    settings = json.loads((folder / name).read_text())
    (folder / name).write_text(json.dumps({**settings, **changes}))
    return folder


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("loader", [load_trained_detector, load_detector, load_feature_extractor])
def test_every_loader_refuses_a_folder_that_asks_for_its_own_code(loader, variant, untrained_detector, tmp_path,
                                                                  says_yes):
    folder = payload_folder(untrained_detector, tmp_path, says_yes, variant)
    with pytest.raises(ModelLoadError) as info:
        loader(folder)
    name, changes = VARIANTS[variant]
    assert f"{folder / name} asks to run code shipped with the model" in str(info.value)
    assert "xlsr never runs a model's own code" in str(info.value)
    assert not says_yes.exists()


@pytest.mark.parametrize("variant", VARIANTS)
def test_score_and_train_refuse_it_before_any_work(variant, untrained_detector, demo_manifests, tmp_path, says_yes,
                                                   capsys):
    folder = payload_folder(untrained_detector, tmp_path, says_yes, variant)
    wav = tmp_path / "clip.wav"
    sf.write(wav, np.zeros(16000, dtype=np.float32), 16000)
    assert main(["score", str(folder), str(wav), "--out", str(tmp_path / "s.csv")]) == 2
    assert main(["train", "--stage", "1", "--model", str(folder), "--train", str(demo_manifests / "train.csv"),
                 "--dev", str(demo_manifests / "dev.csv"), "--out", str(tmp_path / "s1")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("asks to run code shipped with the model" in line for line in err), err
    assert not says_yes.exists() and not (tmp_path / "s.csv").exists() and not (tmp_path / "s1").exists()


def test_a_config_loaded_past_the_folder_check_is_refused_too(untrained_detector, tmp_path, says_yes):
    """A hub model's config.json is not on disk before loading: the loaded settings are checked."""
    folder = payload_folder(untrained_detector, tmp_path, says_yes, "stock type with auto_map")
    with pytest.raises(ModelLoadError, match=r"downloaded \(config.json\) asks to run code .*'auto_map'"):
        _load_config(folder)
    unknown = payload_folder(untrained_detector, tmp_path / "b", says_yes, "unknown model type")
    with pytest.raises(ModelLoadError, match=r"downloaded \(config.json\) asks to run code shipped with the model;"):
        _load_config(unknown)
    assert not says_yes.exists()


def test_every_from_pretrained_is_told_not_to_run_code(untrained_detector, tiny_backbone, monkeypatch):
    import transformers
    calls = []
    for cls in (transformers.AutoConfig, transformers.AutoModelForAudioClassification,
                transformers.AutoFeatureExtractor, transformers.Wav2Vec2Model):
        original = cls.from_pretrained

        def recording(*args, _original=original, _name=cls.__name__, **kwargs):
            calls.append((_name, kwargs.get("trust_remote_code", "not given")))
            return _original(*args, **kwargs)
        monkeypatch.setattr(cls, "from_pretrained", recording)
    load_trained_detector(untrained_detector)
    load_detector(tiny_backbone, head="aasist", segment_samples=16000)  # the bare-encoder path (Wav2Vec2Model)
    load_feature_extractor(untrained_detector)
    names = {name for name, _ in calls}
    assert names == {"AutoConfig", "AutoModelForAudioClassification", "AutoFeatureExtractor", "Wav2Vec2Model"}
    assert all(value is False for _, value in calls), calls


@pytest.mark.parametrize("content,words", [("{not json", "config.json:1: not valid JSON"),
                                           ("[1, 2]", "config.json: expected a JSON object of settings, found list")])
def test_unreadable_settings_are_named(content, words, untrained_detector, tmp_path):
    folder = shutil.copytree(untrained_detector, tmp_path / "m")
    (folder / "config.json").write_text(content)
    with pytest.raises(ModelLoadError, match=words):
        load_trained_detector(folder)
