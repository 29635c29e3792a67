"""Records say what was done: params.yaml, the refusal of values no notebook of the run reads, the summary."""

import json

import pytest
import yaml

from xlsr_helpers.cli.main import main
from xlsr_helpers.core.errors import PipelineError
from xlsr_helpers.pipeline.run_state import RUN_STATE, check_overrides_used, run_record
from xlsr_helpers.pipeline.runner import run_pipeline, summary

NB = ["01_data_prep", "02_stage1_head", "03_stage2_finetune", "04_eval_eer"]
RESOLVED = {"01_data_prep": {"run_dir": "/r", "seed": 42}, "02_stage1_head": {"run_dir": "/r", "s1_epochs": 3},
            "03_stage2_finetune": {"run_dir": "/r", "s2_epochs": 5, "seed": 42},
            "04_eval_eer": {"run_dir": "/r", "seed": 42}}


def finished(run_dir, **parameters):
    """A run_state.yaml with these notebooks finished, each with its parameters."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / RUN_STATE).write_text(yaml.safe_dump({nb: {"parameters": p, "finished": "2026-01-01 00:00:00"}
                                                     for nb, p in parameters.items()}))


def test_a_value_read_only_by_a_notebook_that_does_not_run_is_refused(tmp_path):
    finished(tmp_path, **{"03_stage2_finetune": {"s2_epochs": 8, "seed": 42}})
    with pytest.raises(PipelineError) as err:
        check_overrides_used({"s2_epochs": 5}, RESOLVED, ["04_eval_eer"], tmp_path)
    assert str(err.value) == ("s2_epochs=5 is read only by 03_stage2_finetune (03_stage2_finetune ran with "
                              "s2_epochs=8): this run does not run it (it runs 04_eval_eer); start from the notebook "
                              "that reads a value, or leave it out")
    check_overrides_used({"s2_epochs": 5}, RESOLVED, ["03_stage2_finetune", "04_eval_eer"], tmp_path)
    check_overrides_used({"s2_epochs": 5, "run_dir": "/r"}, RESOLVED, NB[2:], tmp_path)
    check_overrides_used({"seed": 42}, RESOLVED, ["04_eval_eer"], tmp_path)  # 04 reads it
    with pytest.raises(PipelineError, match=r"^s1_epochs=3 is read only by 02_stage1_head \(no record of its run\)"):
        check_overrides_used({"s1_epochs": 3}, RESOLVED, ["04_eval_eer"], tmp_path)
    finished(tmp_path, **{"02_stage1_head": {"s1_epochs": 3}, "03_stage2_finetune": {"s2_epochs": 5}})
    check_overrides_used({"s1_epochs": 3, "s2_epochs": 5}, RESOLVED, ["04_eval_eer"], tmp_path)  # what they ran with


def test_params_yaml_holds_what_ran_and_what_earlier_notebooks_ran_with(tmp_path):
    finished(tmp_path, **{"01_data_prep": {"seed": 1}, "03_stage2_finetune": {"s2_epochs": 8, "seed": 42}})
    record = run_record("cpu-smoke", {"seed": 42}, None, RESOLVED, ["04_eval_eer"], tmp_path)
    assert record == {"preset": "cpu-smoke", "overrides": {"seed": 42}, "seeds": None, "notebooks_run": ["04_eval_eer"],
                      "notebooks": {"01_data_prep": {"seed": 1, "run_dir": str(tmp_path)},
                                    "03_stage2_finetune": {"s2_epochs": 8, "seed": 42, "run_dir": str(tmp_path)},
                                    "04_eval_eer": RESOLVED["04_eval_eer"]}}  # 02: no record, so no claim


def test_from_04_with_a_stage_2_value_stops_before_anything_runs(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "manifests").mkdir(parents=True)
    finished(run, **{"03_stage2_finetune": {"s2_epochs": 2}})
    (run / "params.yaml").write_text("before: kept\n")
    assert main(["run", "--preset", "cpu-smoke", "--run-dir", str(run), "--from", "04", "--set", "s2_epochs=5"]) == 2
    err = capsys.readouterr().err
    assert "s2_epochs=5 is read only by 03_stage2_finetune (03_stage2_finetune ran with s2_epochs=2)" in err
    assert (run / "params.yaml").read_text() == "before: kept\n"
    assert main(["run", "--preset", "cpu-smoke", "--run-dir", str(run), "--from", "04", "--set", "s1_epochs=4"]) == 2
    assert "s1_epochs=4 is read only by 02_stage1_head (no record of its run)" in capsys.readouterr().err


def test_seeds_with_one_given_detector_are_refused(tmp_path):
    with pytest.raises(PipelineError, match="--seeds scores each seed's own stage-2 detector"):
        run_pipeline("cpu-smoke", {"detector": str(tmp_path / "det")}, run_dir=tmp_path / "run", seeds=[1, 2])
    assert not (tmp_path / "run").exists()


def test_the_summary_names_the_detector_that_was_scored(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"split": "eval", "eer": 0.125, "min_tdcf": None,
                                                       "detector": "/elsewhere/detector"}))
    text = summary(tmp_path, 3.0)
    assert "eval EER 12.50 % of /elsewhere/detector" in text
    assert "  scored detector:    /elsewhere/detector" in text.splitlines()
    assert "trained detector" not in text and "scores:" not in text  # neither exists here
    (tmp_path / "stage2" / "detector").mkdir(parents=True)
    (tmp_path / "scores").mkdir()
    lines = summary(tmp_path, 3.0).splitlines()
    assert f"  trained detector:   {tmp_path / 'stage2' / 'detector'}" in lines
    assert f"  scores:             {tmp_path / 'scores'}" in lines
    (tmp_path / "metrics.json").unlink()
    assert "scored detector" not in summary(tmp_path, 3.0) and "EER" not in summary(tmp_path, 3.0)
