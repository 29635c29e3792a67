"""``xlsr app | space``: share a trained detector (the local demo page, a Hugging Face Space folder).
torch and gradio are imported when a command runs, so ``xlsr --help`` needs neither."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path


def _limit(a: argparse.Namespace) -> dict:
    """--max-seconds when given (the default lives in serve.analysis, which imports torch)."""
    return {} if a.max_seconds is None else {"max_seconds": a.max_seconds}


def _cmd_app(a: argparse.Namespace) -> int:
    from xlsr_helpers.serve.app import serve  # function level: torch (and gradio) only when the page is served
    # a stop by `kill` ends as Ctrl-C does: the server closes and the uploads' temporary folder is removed
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"serving {a.detector} on http://127.0.0.1:{a.port or '7860 (or the next free port)'}; Ctrl-C stops it")
    try:
        serve(a.detector, port=a.port, prior_spoof=a.prior_spoof, **_limit(a))
    except KeyboardInterrupt:  # stopped while the page was still starting (gradio handles it once serving)
        print("stopped")
    return 0


def _cmd_space(a: argparse.Namespace) -> int:
    from xlsr_helpers.serve.space import write_space  # function level: torch only when a folder is written
    out = write_space(a.detector, a.out, model_id=a.model_id, title=a.title, **_limit(a))
    detector = f"the Hub model {a.model_id}" if a.model_id else f"{out / 'detector'} (bundled)"
    print(f"wrote the Space folder {out}; detector: {detector}\n"
          f"try it: cd {out} && python app.py\npublish it: xlsr push {out} --space you/name")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("app", help="serve a local web page to try a detector on your own audio (needs gradio)")
    p.add_argument("detector", help="a stage's detector/ folder")
    p.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: 7860 or the next free one)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="longest clip the page accepts (default: 300 s, serve.analysis.MAX_SECONDS)")
    p.add_argument("--prior-spoof", type=float, default=0.5, help="the page's starting prior for p_spoof")
    p.set_defaults(func=_cmd_app)

    s = sub.add_parser("space", help="write a Hugging Face Space folder (gradio) that serves a detector's page")
    s.add_argument("detector", help="a stage's detector/ folder (bundled, or its facts with --model-id)")
    s.add_argument("--out", type=Path, required=True, help="a new or empty folder for the Space")
    s.add_argument("--model-id", default=None, help="load the detector from this Hub model (pushed with `xlsr "
                                                    "push`) instead of bundling it")
    s.add_argument("--title", default="XLS-R deepfake detector", help="the Space's title")
    s.add_argument("--max-seconds", type=float, default=None,
                   help="longest clip the page accepts (default: 300 s, serve.analysis.MAX_SECONDS)")
    s.set_defaults(func=_cmd_space)
