"""What stands behind the one-line errors of ``tests/cli/test_bad_inputs.py``: push checks everything before the
network, the CLI's last guard, line splitting, and disk-full messages that say how much is needed."""

import errno
import shutil

import pytest

from xlsr_helpers.cli.main import main
from xlsr_helpers.core.errors import DiskFullError, check_free_space, disk_full_named, one_line, os_error_line
from xlsr_helpers.core.textfile import split_lines


@pytest.fixture
def hub(monkeypatch):
    """Every call that would reach the Hub, recorded (and answered) instead."""
    from huggingface_hub import HfApi
    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id)))
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: calls.append(("upload", kw["repo_id"])))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    return calls


def test_push_refuses_before_any_network_call(untrained_detector, tmp_path, hub, monkeypatch, capsys):
    broken = shutil.copytree(untrained_detector, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes((broken / "model.safetensors").read_bytes()[:-10])
    assert main(["push", str(broken), "you/det", "--token", "hf_x"]) == 2  # credentials given: the weights decide
    assert "model.safetensors is truncated" in capsys.readouterr().err
    assert main(["push", str(untrained_detector), "not a repo", "--token", "hf_x"]) == 2
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert main(["push", str(untrained_detector), "you/det"]) == 2
    assert "no Hugging Face token" in capsys.readouterr().err
    assert hub == []


def test_push_uploads_a_sound_folder_and_names_a_hub_failure(untrained_detector, tmp_path, hub, monkeypatch, capsys):
    folder = shutil.copytree(untrained_detector, tmp_path / "det")
    assert main(["push", str(folder), "you/det", "--token", "hf_x"]) == 0
    assert hub == [("create", "you/det"), ("upload", "you/det")]
    assert (folder / "README.md").is_file()  # the model card written before the upload

    def refused(self, **kw):
        raise OSError("401 Client Error: Unauthorized\nInvalid credentials in Authorization header")
    monkeypatch.setattr("huggingface_hub.HfApi.upload_folder", refused)
    assert main(["push", str(folder), "you/det", "--token", "hf_bad"]) == 2
    err = capsys.readouterr().err
    assert f"xlsr push: error: pushing {folder} to you/det failed: OSError: 401 Client Error: Unauthorized Invalid" in err
    assert err.count(": error: ") == 1 and "Traceback" not in err  # (loading progress bars go to stderr too)


def test_lines_split_on_newline_only():
    assert split_lines("a\u2028b\r\nc\n\nd\x0ce\n") == ["a\u2028b", "c", "", "d\x0ce"]
    assert split_lines("") == [] and split_lines("\n") == [""] and split_lines("x") == ["x"]


def test_cli_guard_makes_one_short_line():
    assert one_line("3 problems:\n  a:1: x\n  a:2: y") == "3 problems: a:1: x; a:2: y"
    line = one_line("repo " + "a" * 20_000_000 + " refused")
    assert line.startswith("repo aaaa") and line.endswith("... (20000000 characters) refused") and len(line) < 200


def test_os_errors_about_a_file_become_one_line(tmp_path):
    assert os_error_line(PermissionError(errno.EROFS, "Read-only file system", "/kaggle/input/x/run")) == \
        "/kaggle/input/x/run: read-only file system (a read-only folder? give a writable --out / --run-dir)"
    assert os_error_line(OSError(errno.ENOSPC, "No space left", str(tmp_path / "m.csv"))).startswith(
        f"disk full while writing {tmp_path / 'm.csv'} (")
    assert os_error_line(OSError(errno.EIO, "I/O error")) is None  # names no file: left to the traceback


def test_disk_full_says_how_much_is_needed(tmp_path, monkeypatch):
    from collections import namedtuple
    monkeypatch.setattr(shutil, "disk_usage", lambda p: namedtuple("u", "total used free")(10 * 2**30, 0, 2**30))
    with pytest.raises(DiskFullError, match=r"disk full while writing .*ckpt \(1.0 GiB free; it needs about 3.0 GiB\)"):
        with disk_full_named(tmp_path, needed=3 * 2**30):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ckpt"))
    with pytest.raises(DiskFullError, match=rf"^training needs about 2.0 GiB in {tmp_path / 'new'}, but only 1.0 GiB"):
        check_free_space(tmp_path / "new", 2 * 2**30, "training")  # a folder still to be made: its disk counts
    check_free_space(tmp_path, 2**29, "training")
