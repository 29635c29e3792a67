"""``xlsr preflight | train | score | export | run``: the commands that need torch/transformers."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from shlex import quote

import yaml

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.core.outputs import check_output_file, check_output_folder
from xlsr_helpers.core.textfile import read_yaml_mapping
from xlsr_helpers.data.manifest import read_manifest
from xlsr_helpers.pipeline.notebooks import describe_parameters
from xlsr_helpers.serve.onnx_backend import OnnxBackend, is_onnx_export, read_export_info


def parse_assignments(items: list[str] | None) -> dict:
    """``key=value`` pairs; values are parsed as YAML scalars (numbers, booleans, null, lists)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key.strip()] = value  # not a YAML scalar: the string as typed (checked where it is used)
    return out


def _cmd_preflight(a: argparse.Namespace) -> int:
    from xlsr_helpers.runtime.device import preflight  # torch: only for xlsr preflight
    print(preflight(a.device if a.device != "auto" else None))
    return 0


def _cmd_train(a: argparse.Namespace) -> int:
    check_output_folder(a.out, "--out")  # before any work: checkpoints must have somewhere to go
    from xlsr_helpers.train.config import TrainConfig  # torch: only when training runs
    from xlsr_helpers.train.stage import train_stage  # torch: only when training runs
    params = read_yaml_mapping(a.config, "--config is a mapping of training parameters", ConfigError) \
        if a.config else {}
    params.update(parse_assignments(a.set))
    params["stage"] = a.stage
    if a.model:
        params["model"] = a.model
    if a.head:
        params["head"] = a.head
    res = train_stage(TrainConfig.from_mapping(params), a.train, a.dev, a.out)
    from xlsr_helpers.evaluate.scoring import finish_distributed  # torch: only when training runs
    finish_distributed()  # leave the process group before exiting: gloo may abort a process still in it
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports
        return 0
    print(res.history.to_string(index=False))
    print(f"\nbest dev EER {100 * res.best_dev_eer:.3f} %; detector saved to {res.detector_dir}")
    return 0


def _cmd_score(a: argparse.Namespace) -> int:
    # torch: only when scoring runs
    from xlsr_helpers.evaluate.score_output import ScoreJob, check_score_outputs, score_into, windows_path

    # torch, transformers: only when scoring runs
    from xlsr_helpers.evaluate.scoring import (
        AUDIO_EXTENSIONS,
        Scorer,
        ScoringConfig,
        expand_inputs,
        finish_distributed,
        init_distributed,
    )
    check_output_file(a.out, "--out")  # before any work: a bad path must not lose hours of scores
    check_output_file(a.asvspoof_out, "--asvspoof-out")
    windows = windows_path(a.out) if a.windows else None
    check_output_file(windows, "--windows")
    check_score_outputs({"--out": a.out, "--asvspoof-out": a.asvspoof_out, "--windows": windows}, a.model_dir, a.paths)
    if windows and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("--windows under torchrun: window scores are written by one process; score without torchrun")
    if a.backend == "onnx":
        read_export_info(a.model_dir)  # a detector folder is refused here, before any input is read
    elif is_onnx_export(a.model_dir):
        raise ConfigError(f"{a.model_dir} is an ONNX export (xlsr export), not a torch detector folder; "
                          "score it with --backend onnx")
    cfg = ScoringConfig(batch_size=a.batch_size, aggregation=a.aggregation, threshold=a.threshold, window=a.window,
                        hop=a.hop, prior_spoof=a.prior_spoof)
    rank = init_distributed()  # under torchrun: every process scores its share, rank 0 writes
    manifests = [read_manifest(m) for m in a.paths if str(m).endswith(".csv")]
    inputs = expand_inputs([p for p in a.paths if not str(p).endswith(".csv")])
    scorer = Scorer(a.model_dir, cfg, OnnxBackend(a.model_dir) if a.backend == "onnx" else None)
    c = scorer.cfg
    if rank == 0:
        print(f"windows of {c.window} samples every {c.hop}, {c.aggregation}; threshold {c.threshold:.6g}; "
              + (f"p_spoof at a spoof prior of {c.prior_spoof:g} from the detector's calibration" if scorer.calibration
                 else "not calibrated: no llr / p_spoof"))
    jobs = [ScoreJob.from_manifest(m) for m in manifests]
    if inputs.paths:
        jobs.append(ScoreJob(inputs.paths, inputs.ids, inputs.errors))
    # rank 0 writes rows as chunks finish: a run that stops keeps every finished row
    df = score_into(scorer, jobs, a.out, a.asvspoof_out, write=rank == 0, windows=windows)
    finish_distributed()
    if rank != 0:
        return 0
    failed = df[df.error != ""]
    print(f"scored {len(df) - len(failed)} of {len(df)} inputs -> {a.out}" + (f", windows -> {windows}" if windows else "")
          + (f"; {len(inputs.skipped)} non-audio file(s) in the given folders skipped" if inputs.skipped else ""))
    for _, r in failed.iterrows():
        print(f"  not scored: {r.path}: {r.error}")
    for p in inputs.skipped[:20]:
        print(f"  skipped (not {'/'.join(AUDIO_EXTENSIONS)}): {p}")
    if len(inputs.skipped) > 20:
        print(f"  ... and {len(inputs.skipped) - 20} more skipped")
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from xlsr_helpers.serve.onnx_export import check_export_args, export_onnx  # torch, onnx: only for xlsr export
    check_export_args(a.model_dir, a.out, a.format, a.quantize)  # before the detector loads
    out = export_onnx(a.model_dir, a.out, a.quantize)
    print(f"exported {a.model_dir} -> {out} ({a.quantize or 'fp32'}); score it with "
          f"`xlsr score {out} FILES --backend onnx --out scores.csv`")
    return 0


def _cmd_push(a: argparse.Namespace) -> int:
    if (a.repo_id is None) == (a.space is None):
        raise ConfigError("xlsr push takes a model repo id (a detector folder) or --space you/name (a folder "
                          "written by `xlsr space`), not " + ("both" if a.space else "neither"))
    if a.space:
        from xlsr_helpers.serve.space import push_space  # function level: torch only when pushing
        print(f"pushed {a.model_dir} -> {push_space(a.model_dir, a.space, private=not a.public, token=a.token)}")
        return 0
    from xlsr_helpers.model.card import push_detector  # torch, huggingface_hub: only for xlsr push
    print(f"pushed {a.model_dir} -> {push_detector(a.model_dir, a.repo_id, private=not a.public, token=a.token)}")
    return 0


def _cmd_run(a: argparse.Namespace) -> int:
    # torch: the pipeline checks its parameters with the model's rules
    from xlsr_helpers.pipeline.runner import run_pipeline
    if a.list_params:
        print(describe_parameters())
        return 0
    if a.estimate:
        # torch: the pipeline checks its parameters with the model's rules
        from xlsr_helpers.pipeline.runner import estimate_run
        print(estimate_run(preset=a.preset, overrides=parse_assignments(a.set), run_dir=a.run_dir))
        return 0
    from xlsr_helpers.evaluate.seeds import parse_seeds  # torch: seeds reads score files through the scoring stack
    only = [x for part in a.only for x in part.split(",") if x] if a.only else None
    seeds = parse_seeds(a.seeds) if a.seeds else None
    return run_pipeline(preset=a.preset, overrides=parse_assignments(a.set), run_dir=a.run_dir,
                        start_from=a.from_stage, kernel_name=a.kernel, only=only, resume_from=a.resume_from,
                        seeds=seeds)


def _cmd_kaggle(a: argparse.Namespace) -> int:
    check_output_folder(a.out, "--out")
    # torch: kaggle_kernel checks the run's parameters
    from xlsr_helpers.pipeline.kaggle_kernel import (
        ASVSPOOF2019_DATASET,
        check_code_dataset,
        write_code_dataset,
        write_kernel_folder,
    )
    datasets = tuple(a.dataset or [ASVSPOOF2019_DATASET])
    if a.code_dataset:
        check_code_dataset(a.code_dataset)  # before the kernel folder is written
    kernel = write_kernel_folder(a.out / "kernel", a.id, a.notebook, preset=a.preset, code_dataset=a.code_dataset,
                                 repo_url=a.repo_url or "", datasets=datasets, private=not a.public,
                                 internet=not a.offline, models=tuple(a.model_source or ()),
                                 kernels=tuple(a.kernel_source or ()), accelerator=a.accelerator)
    accelerator = json.loads((kernel / "kernel-metadata.json").read_text())["machine_shape"]
    print(f"wrote {kernel} (GPU: {accelerator})")
    if a.code_dataset:  # the printed commands quote the paths: they are pasted into a shell
        code = write_code_dataset(a.out / "code", a.code_dataset)
        print(f"wrote {code} (this repository's code)\n"
              f"1. kaggle datasets create -p {quote(str(code))} --dir-mode zip   (later: kaggle datasets version "
              f"-p {quote(str(code))} --dir-mode zip -m update)")
    # --accelerator on the command line takes precedence over the metadata: say it there too
    print(f"{'2' if a.code_dataset else '1'}. kaggle kernels push -p {quote(str(kernel))} --accelerator {accelerator}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("preflight", help="report device, torch/CUDA versions and precision; refuse unusable GPUs")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.set_defaults(func=_cmd_preflight)

    t = sub.add_parser("train", help="train one stage from manifests (stage 1: head, stage 2: top layers)")
    t.add_argument("--stage", type=int, choices=[1, 2], required=True)
    t.add_argument("--train", required=True, help="train manifest CSV")
    t.add_argument("--dev", required=True, help="dev manifest CSV (model selection and early stopping)")
    t.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, cache, detector/)")
    t.add_argument("--model", help="hub id or folder (default facebook/wav2vec2-xls-r-300m)")
    t.add_argument("--head", help="back-end: linear, aasist, sls (default: the model's own head; linear for a bare "
                                  "encoder)")
    t.add_argument("--config", help="YAML mapping of training parameters")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one parameter (repeatable)")
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser("score", help="score files, folders or manifest CSVs with a saved detector")
    s.add_argument("model_dir")
    s.add_argument("paths", nargs="+", help="audio files, folders, or manifest .csv files")
    s.add_argument("--out", required=True, type=Path,
                   help="CSV: utt_id, path, score, llr, p_spoof, label_pred, n_windows, error")
    s.add_argument("--asvspoof-out", type=Path, help="also write an ASVspoof score file 'utt_id score'")
    s.add_argument("--windows", action="store_true", help="also write one row per scoring window (utt_id, path, window, "
                                                          "start, end in seconds, score) to OUT.windows.csv beside --out")
    s.add_argument("--threshold", type=float, default=None,
                   help="score > T is predicted bonafide (default: the detector's dev EER threshold)")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--aggregation", choices=["mean", "max", "min", "median"], default=None,
                   help="how window scores combine (default: the detector's, mean)")
    s.add_argument("--window", type=int, help="window length in samples (default: the detector's training segment)")
    s.add_argument("--hop", type=int, help="window hop in samples (default: half a window)")
    s.add_argument("--prior-spoof", type=float, default=0.5, help="prior probability of spoof behind p_spoof")
    s.add_argument("--backend", choices=["torch", "onnx"], default="torch",
                   help="torch: a detector folder; onnx: a folder written by `xlsr export` (onnxruntime, CPU)")
    s.set_defaults(func=_cmd_score)

    x = sub.add_parser("export", help="export a detector for CPU scoring without the training stack (ONNX)")
    x.add_argument("model_dir", help="a stage's detector/ folder")
    x.add_argument("--format", default="onnx", help="onnx (the only format)")
    x.add_argument("--out", required=True, type=Path, help="folder for model.onnx, onnx_export.json and the settings")
    x.add_argument("--quantize", default=None, help="int8: dynamic int8 weights of the matrix products")
    x.set_defaults(func=_cmd_export)

    h = sub.add_parser("push", help="publish a detector folder (weights, settings, model card), or a Space folder "
                                    "(--space), to the Hugging Face Hub")
    h.add_argument("model_dir", help="a stage's detector/ folder, or with --space a folder written by `xlsr space`")
    h.add_argument("repo_id", nargs="?", help="you/xlsr-deepfake-detector (a model repository)")
    h.add_argument("--space", metavar="YOU/NAME", help="publish a Space folder as this gradio Space")
    h.add_argument("--public", action="store_true", help="a public repository (default private)")
    h.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN or the saved login)")
    h.set_defaults(func=_cmd_push)

    r = sub.add_parser("run", help="execute the notebooks in order with papermill")
    r.add_argument("--preset", default="demo", help="presets/<name>.yaml: demo, cpu-smoke, kaggle-t4, kaggle-p100")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override one notebook parameter")
    r.add_argument("--run-dir", type=Path, help="output folder (default runs/<preset>)")
    r.add_argument("--from", dest="from_stage", default=None, help="start at notebook 01..04 (reuses earlier outputs)")
    r.add_argument("--only", action="append", help="run just these notebooks, e.g. --only 01,04 (cross-corpus eval)")
    r.add_argument("--resume-from", metavar="DIR|auto",
                   help="continue an earlier run: copy its folder (e.g. a previous Kaggle kernel's output under "
                        "/kaggle/input; 'auto' finds it) and go on at the first unfinished notebook or epoch")
    r.add_argument("--seeds", metavar="1,2,3", help="run stages 2-4 once per seed into RUN/seeds/, then a summary "
                                                    "(mean, sd) and the score-averaged fused system")
    r.add_argument("--estimate", action="store_true",
                   help="print the cache sizes, the disk each goes to and each stage's time (measured on this device) "
                        "without running anything")
    r.add_argument("--list-params", action="store_true", help="print every notebook parameter and its default")
    r.add_argument("--kernel", default="python3")
    r.set_defaults(func=_cmd_run)

    k = sub.add_parser("kaggle-kernel", help="write folders for `kaggle kernels push` (and the code as a dataset)")
    k.add_argument("notebook", nargs="?", default="chain", help="chain (default: 01-04 headless) or 01..04")
    k.add_argument("--id", required=True, help="username/kernel-slug")
    k.add_argument("--out", type=Path, required=True, help="writes OUT/kernel (and OUT/code with --code-dataset)")
    k.add_argument("--code-dataset", metavar="OWNER/SLUG", help="attach this repository as a dataset (written to OUT/code)")
    k.add_argument("--repo-url", help="or clone the code from this URL in the kernel (internet on)")
    k.add_argument("--preset", default=None, help="chain kernel only: a preset in presets/ (default kaggle-t4; "
                                                  "kaggle-p100 for a P100), checked now")
    k.add_argument("--dataset", action="append", default=None, help="dataset sources (default: ASVspoof 2019)")
    k.add_argument("--model-source", action="append", help="Kaggle Model to attach, e.g. the XLS-R weights for offline runs")
    k.add_argument("--kernel-source", action="append", help="an earlier kernel whose output to attach (resume)")
    k.add_argument("--offline", action="store_true", help="internet off: attach the code and the model")
    k.add_argument("--accelerator", help="the GPU to ask Kaggle for: NvidiaTeslaT4 (default; t4), NvidiaL4 (l4), "
                                         "NvidiaTeslaP100 (p100; default with --preset kaggle-p100), ...")
    k.add_argument("--public", action="store_true")
    k.set_defaults(func=_cmd_kaggle)
