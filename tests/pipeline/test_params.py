"""Notebook parameter rules: every kind accepts what it should and names what it refuses."""

import math

import pytest

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.pipeline.params import RULES, absolute_paths, check_parameters, check_value


@pytest.mark.parametrize("name,value,expected", [
    ("s1_epochs", 3, 3), ("s1_epochs", "4", 4), ("s1_epochs", 5.0, 5), ("s1_patience", 0, 0), ("seed", "0", 0),
    ("max_trials_per_split", None, None), ("max_trials_per_split", 2, 2),
    ("s1_learning_rate", "1e-3", 0.001), ("s1_learning_rate", 1, 1.0), ("segment_seconds", 0.025, 0.025),
    ("score_window_seconds", "auto", "auto"), ("score_window_seconds", "2.5", 2.5),
    ("prior_spoof", 0.05, 0.05), ("s2_layer_decay", 1, 1.0), ("s2_encoder_learning_rate", None, None),
    ("s2_encoder_learning_rate", "5e-6", 5e-6), ("cache", True, "on"), ("cache", False, "off"), ("cache", "auto", "auto"),
    ("check_audio", True, True), ("aggregation", "median", "median"), ("phase", "all", "all"),
    ("data_root", "anything/at/all", "anything/at/all"),  # a folder: checked where it is used
    ("data_root", "demo:tiny", "demo:tiny"), ("data_root", "demo:small", "demo:small"), ("data_root", "auto", "auto"),
    ("head", "auto", "auto"), ("head", "aasist", "aasist"), ("head", "sls", "sls"), ("head", "linear", "linear"),
    ("dataset", "in-the-wild", "in-the-wild"), ("s2_layer_decay", 0.5, 0.5), ("s2_layer_decay", "0.75", 0.75),
])
def test_accepted_values_and_their_conversion(name, value, expected):
    out = check_value(name, value)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("name,value,words", [
    ("s1_epochs", 0, "an integer in [1, 1000]"), ("s1_epochs", 2.5, "an integer in [1, 1000]"),
    ("s1_epochs", True, "an integer"), ("s1_epochs", "abc", "s1_epochs='abc'"), ("s1_patience", -1, "an integer in [0, 1000]"),
    ("s1_epochs", "1_000", "s1_epochs='1_000'"), ("s1_learning_rate", "1_0", "s1_learning_rate='1_0'"),  # no digit grouping
    ("max_trials_per_split", 1, "an integer in [2, 100000000] or None"), ("s1_learning_rate", 0, "a number in (0, 1]"),
    ("s1_learning_rate", float("inf"), "a number"), ("segment_seconds", 0.02, "a number in [0.025, 60]"),
    ("segment_seconds", 1e9, "a number in [0.025, 60]"), ("score_window_seconds", 61, "a number in [0.025, 60] or 'auto'"),
    ("s1_batch_size", 10**6, "an integer in [1, 4096]"), ("seed", 2**32, "an integer in [0, 4294967295]"),
    ("score_hop_seconds", "fast", "score_hop_seconds='fast'"), ("prior_spoof", 1, "(0, 1)"), ("prior_spoof", 0, "(0, 1)"),
    ("s2_layer_decay", 1.5, "(0, 1]"), ("s2_encoder_learning_rate", -1, "(0, 1] or None"), ("cache", "maybe", "one of"),
    ("check_audio", "yes", "True or False"), ("check_audio", 1, "True or False"), ("device", "gpu", "'auto', 'cuda', 'cpu'"),
    ("precision", "fp8", "'bf16'"), ("aggregation", "sum", "'median'"), ("phase", "dev", "'hidden_track'"),
    ("on_change", "ignore", "'restart'"), ("head", "rawnet", "['auto', 'aasist', 'linear', 'sls']"),
    ("dataset", "asvspof2019-la", "unknown dataset 'asvspof2019-la': choose one of ['asvspoof2019-la'"),
    ("dataset", 5, "expected a descriptor's name or .yaml path"), ("dataset", "", "expected a descriptor's name"),
    ("data_root", "demo:huge", "expected one of ['demo:tiny', 'demo:small']"), ("data_root", "demo:", "'demo:small']"),
    ("data_root", "", "expected 'auto', 'demo:tiny', 'demo:small' or a folder"), ("data_root", None, "or a folder"),
])
def test_refused_values_name_the_parameter_and_the_rule(name, value, words):
    with pytest.raises(ConfigError) as info:
        check_value(name, value)
    assert f"parameter {name}=" in str(info.value) and words in str(info.value)


def test_the_whole_message_of_a_refused_number():
    for name, value, expected in (
            ("s1_epochs", 0, "parameter s1_epochs=0: expected an integer in [1, 1000]"),
            ("s1_epochs", "1e3", "parameter s1_epochs='1e3': expected an integer in [1, 1000]"),  # no float spelling
            ("max_trials_per_split", 1, "parameter max_trials_per_split=1: expected an integer in [2, 100000000] or None"),
            ("s2_layer_decay", 0, "parameter s2_layer_decay=0: expected a number in (0, 1]"),
            ("prior_spoof", -0.5, "parameter prior_spoof=-0.5: expected a number in (0, 1)"),
            ("s1_epochs", "x" * 100, "parameter s1_epochs='" + "x" * 59 + "... (102 characters): expected an integer "
             "in [1, 1000]")):
        with pytest.raises(ConfigError) as info:
            check_value(name, value)
        assert str(info.value) == expected


def test_notebook_rules_are_the_config_fields_own():
    from xlsr_helpers.evaluate.scoring import SETTING_RULES
    from xlsr_helpers.pipeline.params import SCORING_FIELDS, STAGE_FIELDS
    from xlsr_helpers.train.config import FIELD_RULES
    for fields in STAGE_FIELDS.values():
        for param, field in fields.items():
            assert field not in FIELD_RULES or RULES[param] is FIELD_RULES[field], param
    assert RULES["score_batch_size"] is SETTING_RULES["batch_size"] and RULES["prior_spoof"] is SETTING_RULES["prior_spoof"]
    assert set(SCORING_FIELDS) <= set(RULES) and RULES["seed"] is FIELD_RULES["seed"]
    numbers = [r for r in RULES.values() if r.kind in ("int", "float")]
    assert numbers and all(r.high is not None for r in numbers if r is not SETTING_RULES["threshold"])  # all bounded


def test_all_bad_parameters_are_reported_at_once():
    with pytest.raises(ConfigError) as info:
        check_parameters({"s1_epochs": 0, "device": "gpu", "seed": 1})
    assert str(info.value) == ("parameter s1_epochs=0: expected an integer in [1, 1000]; parameter device='gpu': "
                               "expected one of ['auto', 'cuda', 'cpu']")
    assert check_parameters({"seed": "7", "s1_learning_rate": "1e-4"}) == {"seed": 7, "s1_learning_rate": 1e-4}
    assert math.isclose(check_parameters({"segment_seconds": "0.5"})["segment_seconds"], 0.5)


def test_relative_paths_follow_the_working_directory(tmp_path):
    (tmp_path / "my-model").mkdir()
    out = absolute_paths({"data_root": "data/LA", "run_dir": "auto", "detector": "/abs/det", "cache_dir": "~/c",
                          "base_model": "my-model", "s2_noise_dir": "musan", "dataset": "x/y"}, tmp_path)
    assert out["data_root"] == str(tmp_path / "data" / "LA") and out["s2_noise_dir"] == str(tmp_path / "musan")
    assert out["run_dir"] == "auto" and out["detector"] == "/abs/det" and out["cache_dir"] == "~/c"
    assert out["base_model"] == str(tmp_path / "my-model") and out["dataset"] == "x/y"  # a name, not a file
    mine = absolute_paths({"dataset": "corpora/mine.yaml"}, tmp_path)["dataset"]
    assert mine == str(tmp_path / "corpora" / "mine.yaml")  # one's own descriptor, by path
    hub = absolute_paths({"base_model": "facebook/wav2vec2-xls-r-300m", "data_root": "demo:tiny",
                          "s2_noise_dir": "musan", "dataset": "in-the-wild", "s2_rir_dir": 5}, tmp_path)
    assert hub == {"base_model": "facebook/wav2vec2-xls-r-300m", "data_root": "demo:tiny",  # the others still resolved
                   "s2_noise_dir": str(tmp_path / "musan"), "dataset": "in-the-wild", "s2_rir_dir": 5}
    assert absolute_paths({"dataset": "mine.yml"}, tmp_path) == {"dataset": str(tmp_path / "mine.yml")}


def test_an_own_descriptor_is_checked_with_the_parameter(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nformat: folder\nlabel_map: {real: bonafide}\nsplits: {all: {}}\n")
    with pytest.raises(ConfigError, match=rf"^parameter dataset='{path}': {path}: bad descriptor: csv_name: missing"):
        check_value("dataset", str(path))
    path.write_text(path.read_text() + "csv_name: labels.csv\nextensions: [.wav]\n")
    assert check_value("dataset", str(path)) == str(path)


def test_a_notebook_checks_its_own_parameters_as_it_holds_them():
    from xlsr_helpers.pipeline.params import check_notebook_parameters
    check_notebook_parameters("02_stage1_head", {"s1_epochs": 3, "s1_learning_rate": 1e-3, "unrelated": "x"})
    with pytest.raises(ConfigError) as info:  # a parameter of 02, set badly in the notebook's namespace
        check_notebook_parameters("02_stage1_head", {"s1_epochs": 0, "s2_epochs": 0, "seed": -1})
    assert str(info.value) == ("parameter s1_epochs=0: expected an integer in [1, 1000]; "
                               "parameter seed=-1: expected an integer in [0, 4294967295]")  # s2_epochs belongs to 03


def _declared(notebook: str) -> dict:
    from xlsr_helpers.pipeline.notebooks import notebook_parameters
    return notebook_parameters(notebook)


@pytest.mark.parametrize("notebook,stage", [("02_stage1_head", 1), ("03_stage2_finetune", 2)])
def test_a_stage_config_takes_every_training_parameter_of_its_notebook(notebook, stage):
    """Each parameter of 02/03 that trains reaches its TrainConfig field: set it to a value unlike its
    default and find exactly that value in the field (segment_seconds in samples)."""
    import ast

    from xlsr_helpers.pipeline.params import SHARED_FIELDS, STAGE_FIELDS, stage_config
    declared = {k: check_value(k, ast.literal_eval(v)) for k, v in _declared(notebook).items()}  # papermill: source text
    other = {"s1_epochs": 7, "s2_epochs": 7, "s1_batch_size": 3, "s2_batch_size": 3, "s2_grad_accum": 5,
             "s1_learning_rate": 0.02, "s2_learning_rate": 0.02, "s1_patience": 9, "s2_patience": 9, "s2_top_layers": 2,
             "s2_average_top_k": 3, "grad_checkpointing": True, "s2_augment": "gain", "s2_noise_dir": "n", "s2_rir_dir": "r",
             "s2_encoder_learning_rate": 0.004, "s2_layer_decay": 0.5, "head": "aasist", "cache": "off", "cache_dir": "/c",
             "precision": "fp32", "device": "cpu", "num_workers": 3, "eval_batch_size": 5, "seed": 11, "on_change": "restart",
             "report_to": "none", "segment_seconds": 1.5, "corpus_weights": "balanced", "select_on": "mean"}
    trains = set(STAGE_FIELDS[stage]) | (set(SHARED_FIELDS) & set(declared)) | {"segment_seconds"}
    assert trains <= set(declared) and trains <= set(other)
    cfg = stage_config(stage, {**declared, **{k: other[k] for k in trains}}, model="m")
    assert cfg.stage == stage and cfg.model == "m" and cfg.segment_samples == 24000
    for param in trains - {"segment_seconds"}:
        assert getattr(cfg, STAGE_FIELDS[stage].get(param, param)) == other[param], param


def test_each_corpus_path_follows_the_user(tmp_path):
    """dataset and data_root of several corpora: each relative part resolved against the user's folder;
    descriptor names and keywords stay."""
    got = absolute_paths({"dataset": "asvspoof2019-la+own/mine.yaml", "data_root": "demo:tiny+corpora/mine+auto"},
                         tmp_path)
    assert got == {"dataset": f"asvspoof2019-la+{tmp_path / 'own' / 'mine.yaml'}",
                   "data_root": f"demo:tiny+{tmp_path / 'corpora' / 'mine'}+auto"}


def test_a_descriptor_named_not_pathed_leaves_the_later_path_parameters_resolved(tmp_path):
    """``dataset`` by name is skipped, and the path parameters listed after it (``asv_scores``) are still
    resolved against the working directory."""
    out = absolute_paths({"dataset": "asvspoof2019-la", "asv_scores": "asv/scores.txt"}, tmp_path)
    assert out == {"dataset": "asvspoof2019-la", "asv_scores": str(tmp_path / "asv" / "scores.txt")}
