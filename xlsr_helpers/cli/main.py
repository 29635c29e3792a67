"""The ``xlsr`` command line (also ``python -m xlsr_helpers``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd

from xlsr_helpers.cli import model_commands as cli_model
from xlsr_helpers.cli import serve_commands as cli_serve
from xlsr_helpers.core.errors import ConfigError, XlsrError, one_line, os_error_line
from xlsr_helpers.core.outputs import check_output_folder
from xlsr_helpers.data.corpora import AUTO, build_corpora, parse_corpora
from xlsr_helpers.data.descriptor import available_datasets
from xlsr_helpers.data.manifest import check_audio
from xlsr_helpers.evaluate.sasv import evaluate_sasv
from xlsr_helpers.evaluate.sasv_files import is_sasv_score_file, join_sasv, read_sasv_keys, read_sasv_scores
from xlsr_helpers.evaluate.scorefile import (
    TDCF_VERSIONS,
    check_phase,
    evaluate,
    join_scores,
    json_record,
    read_asv_2021,
    read_asv_scores,
    read_protocol,
    read_score_file,
    select_phase,
)
from xlsr_helpers.pipeline.notebooks import copy_notebooks


def _cmd_demo_data(a: argparse.Namespace) -> int:
    check_output_folder(a.out_dir, "OUT_DIR")
    # torch: data.demo writes audio with it; the other commands stay torch-free
    from xlsr_helpers.data.demo import make_demo_corpus
    root = make_demo_corpus(a.out_dir, seed=a.seed, size=a.size)
    print(f"demo corpus ({a.size}, seed {a.seed}) written to {root}")
    return 0


def _cmd_manifest(a: argparse.Namespace) -> int:
    check_output_folder(a.out, "--out")  # before the corpus is read
    specs = parse_corpora(a.dataset, a.root)
    res = build_corpora(specs, [None if s.root == AUTO else s.root for s in specs], splits=a.split,
                        allow_missing=a.allow_missing, allow_outside_root=a.allow_outside_root)
    written = res.write(a.out)
    with pd.option_context("display.width", 200, "display.max_rows", 500):
        print(res.summary().drop(columns="protocol").to_string(index=False))
        print()
        print(res.counts().to_string(index=False))
    print(f"\nwrote {len(written)} files to {a.out}")
    if len(specs) > 1:
        print(res.lacking_text())
    for corpus, part in zip(res.corpora, res.parts, strict=True):
        for split, rep in part.reports.items():
            if rep.missing:
                print(f"WARNING: {'' if len(specs) == 1 else corpus + ' '}{split}: {rep.missing_skipped} trial(s) "
                      f"skipped, audio missing (listed in skipped_missing_{split}.csv)")
    if a.check_audio:
        return _check_audio(res, a.out)
    return 0


def _check_audio(res, out: Path) -> int:
    """Decode every kept file: unreadable ones fail the command, silent/short/clipped are reported."""
    summary = check_audio(res.splits, out)
    print(summary.to_string(index=False))
    unreadable = int(summary.unreadable.sum())
    if unreadable:
        print(f"xlsr manifest: error: {unreadable} unreadable file(s), listed in {out}/audio_check_*.csv",
              file=sys.stderr)
        return 2
    return 0


def _cmd_eer(a: argparse.Namespace) -> int:
    phase = check_phase(a.phase or "eval")  # every option is checked before any file is read
    if a.asv_keys and not a.asv_scores:
        raise ConfigError("--asv-keys (2021 ASV trial_metadata.txt) needs --asv-scores (ASVTorch_Kaldi/score.txt)")
    if is_sasv_score_file(a.score_file):
        return _eer_sasv(a)
    df = join_scores(read_score_file(a.score_file), read_protocol(a.protocol),
                     score_name=str(a.score_file), protocol_name=str(a.protocol))
    df, kept = select_phase(df, phase, explicit=a.phase is not None)
    if a.asv_keys:  # ASVspoof 2021 LA: the revised t-DCF on the phase, as the 2021 evaluation package
        asv, versions = read_asv_2021(a.asv_keys, a.asv_scores, phase), ("2021",)
    else:
        asv, versions = (read_asv_scores(a.asv_scores) if a.asv_scores else None), TDCF_VERSIONS
    res = evaluate(df, asv, versions)
    if a.json:  # the keys of a split in metrics.json, nothing else on stdout
        print(json.dumps({**json_record(res), "trials": kept}, default=float))
        return 0
    print(f"trials: {res['n_bonafide']} bonafide, {res['n_spoof']} spoof ({kept})")
    print(f"EER: {100 * res['eer']:.3f} %  (threshold {res['threshold']:.6g})")
    print(f"min DCF: {res['min_dcf']:.5f}  act DCF: {res['act_dcf']:.5f}  Cllr: {res['cllr']:.5f} bits"
          "  (ASVspoof 5 costs; act DCF and Cllr need calibrated LLR scores)")
    if asv is not None:
        for version in versions:
            name = "2019 legacy" if version == "2019" else "2021 revised"
            print(f"min t-DCF ({name}): {res[f'min_tdcf_{version}']:.5f}")
    table = res["per_attack"].assign(eer_pct=lambda d: (100 * d.eer).round(3))
    print(table.drop(columns=["eer"]).to_string(index=False))
    return 0


def _eer_sasv(a: argparse.Namespace) -> int:
    """ASVspoof 5 track 2: what the evaluation package's ``evaluation.py --m t2_tandem`` reports."""
    given = [o for o, v in (("--asv-scores", a.asv_scores), ("--asv-keys", a.asv_keys), ("--phase", a.phase)) if v]
    if given:
        verb = "does" if len(given) == 1 else "do"
        raise ConfigError(f"{a.score_file} is an ASVspoof 5 track-2 score file: {', '.join(given)} {verb} not apply "
                          "(its min t-DCF uses the evaluation package's fixed ASV error rates, its t-EER the file's "
                          "asv-score column); leave them out")
    df = join_sasv(read_sasv_scores(a.score_file), read_sasv_keys(a.protocol), str(a.score_file), str(a.protocol))
    res = evaluate_sasv(df)
    if a.json:
        print(json.dumps(res, default=float))
        return 0
    print(f"trials: {res['n_target']} target, {res['n_nontarget']} nontarget, {res['n_spoof']} spoof "
          "(ASVspoof 5 track 2)")
    print(f"min a-DCF: {res['min_a_dcf']:.5f}  (threshold {res['a_dcf_threshold']:.6g})")
    if "min_tdcf" in res:
        print(f"min t-DCF: {res['min_tdcf']:.5f}  (the evaluation package's fixed ASV error rates)")
    if "t_eer" in res:
        print(f"t-EER: {100 * res['t_eer']:.3f} %  (ASV threshold {res['t_eer_asv_threshold']:.6g}, "
              f"CM threshold {res['t_eer_cm_threshold']:.6g})")
    missing = [c for c, m in (("cm-score", "min_tdcf"), ("asv-score", "t_eer")) if m not in res]
    if missing:
        print(f"not computed: {'min t-DCF and ' if 'min_tdcf' not in res else ''}t-EER ({' and '.join(missing)} "
              "'-' in the score file)")
    return 0


def _cmd_notebooks(args) -> int:
    check_output_folder(args.out_dir, "OUT_DIR")
    for path in copy_notebooks(args.out_dir):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="xlsr", description="Audio deepfake detection with XLS-R.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo-data", help="generate the synthetic demo corpus (ASVspoof 2019 LA layout)")
    d.add_argument("out_dir", type=Path)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--size", choices=["tiny", "small"], default="small")
    d.set_defaults(func=_cmd_demo_data)

    m = sub.add_parser("manifest", help="build validated manifests from a corpus' official files")
    m.add_argument("--dataset", required=True, help=f"one of {', '.join(available_datasets())}, "
                   "or the path of your own descriptor (.yaml, see data_manifest/README.md); several joined with +")
    m.add_argument("--root", default=None, help="corpus root (default: auto-detect Kaggle mounts); for several "
                   "corpora one root per corpus joined with + in the same order (auto for any of them)")
    m.add_argument("--out", type=Path, required=True, help="folder for <split>.csv, counts.csv, validation.yaml")
    m.add_argument("--split", action="append", help="only this split (repeatable)")
    m.add_argument("--allow-missing", action="store_true",
                   help="skip trials whose audio is missing (written to skipped_missing_<split>.csv)")
    m.add_argument("--allow-outside-root", action="store_true",
                   help="allow audio paths outside the root (absolute or ../ paths in your own CSV)")
    m.add_argument("--check-audio", action="store_true",
                   help="decode every file; report unreadable, silent, short (< 0.5 s) and clipped audio")
    m.set_defaults(func=_cmd_manifest)

    e = sub.add_parser("eer", help="EER, min t-DCF and per-attack EER of a score file; a-DCF, min t-DCF and "
                                   "t-EER of an ASVspoof 5 track-2 file")
    e.add_argument("score_file", type=Path, help="lines 'utt_id score' (higher = more bonafide), or an ASVspoof 5 "
                                                 "track-2 file with the header 'spk filename cm-score asv-score sasv-score'")
    e.add_argument("--protocol", type=Path, required=True, help="ASVspoof CM protocol / trial_metadata.txt, or the "
                                                                "track-2 key 'spk filename cm-label asv-label'")
    e.add_argument("--asv-scores", type=Path, default=None,
                   help="organisers' ASV scores for min t-DCF: 2019 '...asv.eval.gi.trl.scores.txt', or with --asv-keys "
                        "the 2021 'ASV/ASVTorch_Kaldi/score.txt'")
    e.add_argument("--asv-keys", type=Path, default=None,
                   help="ASVspoof 2021 LA 'ASV/trial_metadata.txt': official 2021 min t-DCF on --phase")
    e.add_argument("--phase", default=None,
                   help="ASVspoof 2021 keys: metrics on this phase (eval, progress, hidden_track) or 'all' "
                        "(default eval, as the official results); keys without phases (2019, ASVspoof 5) "
                        "refuse any phase but 'all'")
    e.add_argument("--json", action="store_true", help="print every metric as one JSON object (the keys of a split "
                                                       "in metrics.json), nothing else")
    e.set_defaults(func=_cmd_eer)

    n = sub.add_parser("notebooks", help="copy the four notebooks (01-04) into a folder, e.g. from an installed package")
    n.add_argument("out_dir", type=Path)
    n.set_defaults(func=_cmd_notebooks)

    cli_model.add_commands(sub)  # preflight, train, score, export, run (they import torch lazily)
    cli_serve.add_commands(sub)  # app, space (torch and gradio imported lazily)
    return p


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (not the one at set-up)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("[xlsr] %(message)s"))
    pkg_log = logging.getLogger("xlsr_helpers")
    if not pkg_log.handlers:
        pkg_log.addHandler(handler)
    pkg_log.propagate = False  # the command line prints its own lines, once, whatever the root logger holds
    pkg_log.setLevel(logging.INFO)
    try:
        return int(args.func(args) or 0)
    except (XlsrError, FileNotFoundError) as exc:
        return _error(args.command, str(exc))
    except OSError as exc:  # a full disk, a read-only folder, a path that is a file: about a named file
        line = os_error_line(exc)
        if line is None:
            raise
        return _error(args.command, line)


def _error(command: str, message: str) -> int:
    """The one line a refused command prints (exit code 2)."""
    print(f"xlsr {command}: error: {one_line(message)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
