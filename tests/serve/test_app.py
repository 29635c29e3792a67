"""``xlsr app``'s page through its API (``gradio_client``): the answers are the analysis of the same file,
unusable files get a message in the page, nothing lands outside the temporary folder, no CDN is needed."""

import os
import re
import socket
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from xlsr_helpers.evaluate.scoring import Scorer
from xlsr_helpers.serve.analysis import Analysis, analyse

pytest.importorskip("gradio_client", reason="the demo's API test needs gradio_client (pip install 'xlsr-helpers[app]')")


def ask(demo, path, prior=0.5):
    from gradio_client import Client, handle_file

    from xlsr_helpers.serve.app import API_NAME
    return Client(demo.local_url, verbose=False).predict(handle_file(str(path)), prior, api_name=f"/{API_NAME}")


def clip(path, seconds, rate=22_050, channels=1, seed=1):
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal((int(seconds * rate), channels))).astype("float32"), rate)
    return path


def test_the_page_answers_with_the_analysis_of_the_file(served_demo, calibrated_detector, tmp_path):
    wav = clip(tmp_path / "mine.wav", 2.2, channels=2)
    verdict, p_spoof, plot, details = ask(served_demo, wav, prior=0.1)
    expected = analyse(Scorer(calibrated_detector), wav, prior_spoof=0.1)
    assert details["score"] == pytest.approx(expected.score, abs=1e-9)
    assert details["verdict"] == expected.verdict and details["window_starts_s"] == expected.window_starts_s
    assert details["p_spoof"] == pytest.approx(expected.p_spoof, rel=1e-9) and details["prior_spoof"] == 0.1
    assert ("**bona fide**" if expected.verdict == "bonafide" else "**spoofed**") in verdict
    assert f"p_spoof = {expected.p_spoof:.4f}** at a spoof prior of 0.1" in p_spoof
    assert plot is not None  # the window plot (a matplotlib figure, sent as an image)


def test_unusable_files_get_a_message_not_a_traceback(served_demo, tmp_path):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    verdict, p_spoof, plot, details = ask(served_demo, junk)
    assert verdict.startswith("## Cannot use this file") and "junk.wav: not audio this demo can read" in verdict
    assert "Traceback" not in verdict and p_spoof == "" and plot is None and "junk.wav" in details["error"]
    long = clip(tmp_path / "long.flac", 301, rate=4_000)  # past the stated 300 s limit
    verdict, *_ = ask(served_demo, long)
    assert "long.flac lasts 301.0 s; the demo takes up to 300 s" in verdict


def test_uploads_stay_in_the_temporary_folder(served_demo, tmp_path):
    ask(served_demo, clip(tmp_path / "where.wav", 0.5))
    temp = Path(os.environ["GRADIO_TEMP_DIR"])
    assert temp.name.startswith("xlsr-app-") and list(temp.rglob("where.wav"))  # the upload, in our temp folder
    assert list(served_demo.cwd.iterdir()) == []  # nothing in the folder the page was served from


def test_the_page_loads_nothing_from_other_hosts(served_demo):
    html = urllib.request.urlopen(served_demo.local_url, timeout=30).read().decode()
    loaded = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
    assert loaded and not [u for u in loaded if u.startswith(("http:", "https:", "//"))], loaded


def test_an_uncalibrated_detector_says_so():
    from xlsr_helpers.serve.app import p_spoof_markdown
    text = p_spoof_markdown(Analysis(score=1.0, verdict="bonafide", threshold=0.0, p_spoof=None, prior_spoof=0.5,
                                     duration_s=1.0))
    assert "not available" in text and "not calibrated" in text


def test_inline_in_a_jupyter_notebook_shows_the_page_in_the_cell(untrained_detector, tmp_path):
    """``serve(..., inline=True)`` in a real Jupyter kernel returns at once and puts the page in the cell's output."""
    import nbformat
    from nbclient import NotebookClient
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(f"import sys; sys.path[:0] = {sys.path!r}\nfrom xlsr_helpers.serve.app import serve\n"
                                  f"demo = serve({str(untrained_detector)!r}, port={port}, inline=True)"),
        nbformat.v4.new_code_cell("import urllib.request\nprint(urllib.request.urlopen(demo.local_url).status)\n"
                                  "demo.close()")])
    NotebookClient(nb, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    html = [o["data"]["text/html"] for o in nb.cells[0].outputs if "text/html" in o.get("data", {})]
    assert html and "<iframe" in html[0] and f"{port}" in html[0], nb.cells[0].outputs
    assert "".join(o["text"] for o in nb.cells[1].outputs if o.get("name") == "stdout").startswith("200\n")
