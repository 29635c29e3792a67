"""``xlsr space``: the folder a Hugging Face Space runs. Written with a tiny detector bundled, its ``app.py`` is
started in a subprocess and queried with gradio_client; ``xlsr push --space`` uploads it (Hub client patched)."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from importlib import metadata

import numpy as np
import pytest
import soundfile as sf
import yaml

from xlsr_helpers.cli.main import main
from xlsr_helpers.evaluate.scoring import Scorer
from xlsr_helpers.serve.analysis import analyse

pytest.importorskip("gradio", reason="a Space folder pins gradio and runs it (pip install 'xlsr-helpers[app]')")


@pytest.fixture(scope="module")
def space(untrained_detector, tmp_path_factory):
    out = tmp_path_factory.mktemp("space") / "my-space"
    assert main(["space", str(untrained_detector), "--out", str(out), "--title", "My detector"]) == 0
    return out


def front_matter(readme):
    _, header, body = readme.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(header), body


def test_the_folder_holds_what_a_gradio_space_needs(space, untrained_detector):
    header, body = front_matter(space / "README.md")
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py" and header["title"] == "My detector"
    assert header["sdk_version"] == metadata.version("gradio") and "models" not in header
    assert "| dev EER threshold (score) | 0.25 |" in body and "## Intended use and limits" in body  # the card
    pins = dict(line.split("==") for line in (space / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert {"torch", "transformers", "soundfile", "gradio", "gradio_client"} <= set(pins)
    assert all(metadata.version(name) == version for name, version in pins.items())  # the versions tested here
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "xlsr_detector.json"):
        assert (space / "detector" / name).read_bytes() == (untrained_detector / name).read_bytes()
    assert (space / "xlsr_helpers" / "serve" / "app.py").is_file() and not list(space.rglob("__pycache__"))
    assert "MODEL_ID = None" in (space / "app.py").read_text()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_python_app_py_serves_the_detector(space, untrained_detector, tmp_path):
    from gradio_client import Client, handle_file
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADIO_TEMP_DIR")}
    env.update(GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1")
    # no PYTHONPATH: the Space's own copy of the package (beside app.py) is what it imports
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            try:
                urllib.request.urlopen(url, timeout=5)
                break
            except OSError:
                time.sleep(1)
        wav = tmp_path / "clip.ogg"
        sf.write(wav, (0.1 * np.random.default_rng(3).standard_normal(24_000)).astype("float32"), 16_000)
        *_, details = Client(url, verbose=False).predict(handle_file(str(wav)), 0.5, api_name="/analyse")
        expected = analyse(Scorer(untrained_detector), wav)
        assert details["score"] == pytest.approx(expected.score, abs=1e-9) and details["verdict"] == expected.verdict
        assert details["p_spoof"] is None  # the tiny detector is not calibrated
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    assert "Traceback" not in out, out
    imported = subprocess.run([sys.executable, "-c", "import xlsr_helpers; print(xlsr_helpers.__file__)"], cwd=space,
                              env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert imported == str(space / "xlsr_helpers" / "__init__.py")


def test_a_detector_on_the_hub_is_referenced_not_bundled(untrained_detector, tmp_path):
    from xlsr_helpers.serve.space import write_space
    out = write_space(untrained_detector, tmp_path / "s", model_id="you/xlsr-detector")
    header, _ = front_matter(out / "README.md")
    assert header["models"] == ["you/xlsr-detector"] and not (out / "detector").exists()
    assert "MODEL_ID = 'you/xlsr-detector'" in (out / "app.py").read_text()


def test_xlsr_push_space_uploads_the_folder_as_a_gradio_space(space, monkeypatch, capsys):
    from huggingface_hub import HfApi
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw)))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    assert main(["push", str(space), "--space", "you/demo", "--token", "hf_x", "--public"]) == 0
    assert calls[0] == ("create", "you/demo", {"private": False, "exist_ok": True, "repo_type": "space",
                                               "space_sdk": "gradio"})
    assert calls[1] == ("upload", {"folder_path": str(space), "repo_id": "you/demo", "repo_type": "space",
                                   "commit_message": "Upload XLS-R deepfake detector demo"})
    assert "https://huggingface.co/spaces/you/demo" in capsys.readouterr().out
