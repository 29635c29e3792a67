"""``xlsr app | space`` on the command line: the parser stays free of torch and gradio, and states the limit."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from xlsr_helpers.cli.main import build_parser
from xlsr_helpers.serve.analysis import MAX_SECONDS


def test_the_commands_are_parsed_without_torch_or_gradio():
    code = ("import sys; from xlsr_helpers.cli.main import build_parser; build_parser().parse_args(['app', 'd']); "
            "print(sorted(m for m in ('torch', 'gradio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout
    assert out.strip() == "[]"


def test_the_help_states_the_limit_the_page_applies(capsys):
    for command in ("app", "space"):
        help_text = " ".join(build_parser()._subparsers._group_actions[0].choices[command].format_help().split())
        assert f"(default: {MAX_SECONDS:g} s, serve.analysis.MAX_SECONDS)" in help_text


def test_xlsr_app_serves_the_page_until_stopped_and_leaves_nothing(untrained_detector, tmp_path):
    """The command itself, in a process of its own: it serves the page on the given port; stopped, it removes
    its temporary folder, and its working folder stays empty."""
    pytest.importorskip("gradio", reason="xlsr app needs gradio (pip install 'xlsr-helpers[app]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "tmp").mkdir()
    (tmp_path / "cwd").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env.update(PYTHONPATH=os.pathsep.join(sys.path), TMPDIR=str(tmp_path / "tmp"))
    proc = subprocess.Popen([sys.executable, "-m", "xlsr_helpers", "app", str(untrained_detector), "--port", str(port)],
                            cwd=tmp_path / "cwd", env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.monotonic() + 300, ""
        while time.monotonic() < deadline and not page:
            assert proc.poll() is None, proc.stdout.read()
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
            except OSError:
                time.sleep(1)
        assert "XLS-R deepfake detector" in page
        assert [p.name.startswith("xlsr-app-") for p in (tmp_path / "tmp").iterdir()] == [True]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert not [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("xlsr-app-")]
    assert list((tmp_path / "cwd").iterdir()) == []
