"""``xlsr app DETECTOR``: a local web page to try a detector on one's own audio (Gradio).

Upload or record a clip; the page shows the verdict at the detector's dev-EER threshold, ``p_spoof``
at a chosen prior (calibrated detectors only), the window scores over time and the detector's facts.
The work is ``serve.analysis``'s; this module only lays it out. gradio is the optional extra ``app``
and is imported when a page is built, so the rest of the package never needs it.

Offline: no analytics, no share link (unless asked for), the page's scripts, styles and fonts come from
the gradio package itself, and uploads land in a temporary folder removed when the process ends.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

from xlsr_helpers.core.errors import ConfigError, XlsrError, failure_reason, one_line
from xlsr_helpers.core.rules import problems
from xlsr_helpers.evaluate.plots import window_scores_over_time
from xlsr_helpers.evaluate.scoring import Scorer, ScoringConfig
from xlsr_helpers.model.loading import check_model_ref
from xlsr_helpers.serve.analysis import APP_RULES, MAX_BYTES, MAX_SECONDS, Analysis, analyse, detector_facts

log = logging.getLogger(__name__)
INSTALL_HINT = "pip install 'xlsr-helpers[app]' (or pip install gradio)"
API_NAME = "analyse"  # gradio_client: Client(url).predict(handle_file(path), prior, api_name="/analyse")


class AppError(XlsrError, RuntimeError):
    """The demo cannot start: gradio is missing, or the port is taken."""


def _gradio():
    """gradio, imported with the offline settings in place (read once, when gradio is first imported)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if "GRADIO_TEMP_DIR" not in os.environ:  # uploads go to a folder of ours, removed at exit
        tmp = tempfile.mkdtemp(prefix="xlsr-app-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        os.environ["GRADIO_TEMP_DIR"] = tmp
    try:
        import gradio as gr  # function level: gradio is an optional extra (the `app` extra)
    except ImportError:
        raise AppError(f"the demo needs gradio: {INSTALL_HINT}") from None
    return gr


def check_app_settings(**values) -> dict:
    """The demo's settings checked by their rules (``APP_RULES``) before anything loads."""
    checked, found = problems(APP_RULES, values)
    if found:
        raise ConfigError("; ".join(found))
    return checked


def check_port(host: str | None, port: int | None) -> None:
    """A given port must be free on the host before the detector loads (gradio's own refusal is a traceback)."""
    if port is None:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a closed port is free
        try:
            s.bind((host or "127.0.0.1", port))
        except OSError as exc:
            raise AppError(f"port {port} on {host or '127.0.0.1'} is not free ({exc.strerror}): give another "
                           "--port, or none to take the first free one from 7860") from None


def verdict_markdown(a: Analysis) -> str:
    """The verdict line: what the detector decided, on which score and threshold."""
    word = "bona fide" if a.verdict == "bonafide" else "spoofed"
    return (f"## Verdict: **{word}**\n\nscore {a.score:.4g} {'>' if a.verdict == 'bonafide' else '<='} threshold "
            f"{a.threshold:.4g} (the detector's dev-EER threshold); {len(a.window_scores)} window(s) over "
            f"{a.duration_s:.2f} s, {len(a.spoofed_windows)} of them below the threshold. The file: "
            f"{a.source_rate:,} Hz, {a.channels} channel(s), read at 16 kHz mono.")


def p_spoof_markdown(a: Analysis) -> str:
    if a.p_spoof is None:
        return ("**p_spoof: not available**: this detector is not calibrated, so its scores are not "
                "probabilities; only the verdict at the threshold means something.")
    return f"**p_spoof = {a.p_spoof:.4f}** at a spoof prior of {a.prior_spoof:g} (from the detector's calibration)"


def facts_markdown(facts: dict[str, str]) -> str:
    rows = "\n".join(f"| {k} | {v.replace('|', '/')} |" for k, v in facts.items())
    return f"| fact | value |\n|---|---|\n{rows}"


def build_app(detector: str | Path, max_seconds: float = MAX_SECONDS, prior_spoof: float = 0.5):
    """The page (a ``gradio.Blocks``) for one detector folder; the detector is loaded once, here."""
    check_app_settings(max_seconds=max_seconds, prior_spoof=prior_spoof)
    check_model_ref(detector, detector=True)  # a wrong folder is said before gradio is looked for
    gr = _gradio()
    scorer = Scorer(detector, ScoringConfig(prior_spoof=prior_spoof))
    facts = detector_facts(scorer, detector)
    calibrated = scorer.calibration is not None

    def run(path: str | None, prior: float):
        if not path:
            return "Upload or record a clip first.", "", None, {}
        try:
            a = analyse(scorer, path, prior, max_seconds=max_seconds)
        except XlsrError as exc:  # the file's fault: said in the page, in one line
            return f"## Cannot use this file\n\n{one_line(str(exc))}", "", None, {"error": one_line(str(exc))}
        except Exception as exc:  # noqa: BLE001 - never a stack trace in the page; the log keeps it
            log.exception("analysing %s failed", path)
            return f"## Scoring failed\n\n{failure_reason(exc)}", "", None, {"error": failure_reason(exc)}
        fig = window_scores_over_time(a.window_starts_s, a.window_ends_s, a.window_scores, a.threshold)
        return verdict_markdown(a), p_spoof_markdown(a), fig, a.as_dict()

    with gr.Blocks(title="XLS-R deepfake detector", analytics_enabled=False) as demo:
        gr.Markdown("# XLS-R audio deepfake detector\nUpload or record speech (WAV, FLAC, OGG or MP3; any sample "
                    f"rate and channels; up to {max_seconds:g} s and {MAX_BYTES // 2**20} MiB). The detector "
                    "says whether it sounds bona fide or spoofed (synthesised or converted), and which seconds "
                    "look spoofed. A research tool, not a forensic one: it is only as good as its training data.")
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="audio", elem_id="audio",
                                 buttons=["download"])  # no 'share': it posts to the Hub
                prior = gr.Slider(0.01, 0.99, value=prior_spoof, step=0.01, label="prior probability of spoof",
                                  info="behind p_spoof" if calibrated else "not used: the detector is not calibrated",
                                  interactive=calibrated, elem_id="prior")
                button = gr.Button("Analyse", variant="primary", elem_id="analyse")
            with gr.Column():
                verdict = gr.Markdown(elem_id="verdict")
                p_spoof = gr.Markdown(elem_id="p-spoof")
                plot = gr.Plot(label="window scores over time", elem_id="windows")
        with gr.Accordion("the detector", open=True):
            gr.Markdown(facts_markdown(facts), elem_id="facts")
        with gr.Accordion("details (JSON)", open=False):
            details = gr.JSON(elem_id="details")
        button.click(run, [audio, prior], [verdict, p_spoof, plot, details], api_name=API_NAME)
    return demo


def serve(detector: str | Path, port: int | None = None, inline: bool = False, share: bool = False,
          max_seconds: float = MAX_SECONDS, prior_spoof: float = 0.5, block: bool | None = None,
          host: str | None = "127.0.0.1"):
    """Serve the page on ``host:port`` (a free port from 7860 when ``port`` is None; ``host`` None: gradio's
    GRADIO_SERVER_NAME, which a Space sets, else localhost; the same for the port). ``inline``:
    show it in the notebook cell and return at once. ``share``: a public gradio.live link (needs the
    network; Kaggle's browser cannot reach the kernel's localhost, so there only this shows the page).
    ``block``: wait until stopped (default: unless inline). Returns the gradio app (``.local_url``, ``.close()``)."""
    check_app_settings(port=port, max_seconds=max_seconds, prior_spoof=prior_spoof)
    check_port(host, port)
    demo = build_app(detector, max_seconds=max_seconds, prior_spoof=prior_spoof)
    block = not inline if block is None else block
    demo.launch(server_name=host, server_port=port, share=share, inline=inline, prevent_thread_lock=not block,
                max_file_size=MAX_BYTES, show_error=False, quiet=not block, footer_links=["api"])
    return demo
