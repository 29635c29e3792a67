"""Setups for the rows of ``test_bad_inputs.py`` about model folders, YAML files, output folders, full
disks and ``xlsr push`` (not collected as tests). Each setup takes ``(tmp, fx)`` and returns the argv."""

import errno
import json
import os
import pathlib
import shutil
from collections import namedtuple

SAFETENSORS = "model.safetensors"


def _wav(fx):
    return str(next(fx["demo"].rglob("*.flac")))


def _copy(fx, tmp, which="detector"):
    return shutil.copytree(fx[which], tmp / which)


def edit_json(name, change):
    """A folder file's JSON changed by ``change(dict)`` (in place)."""
    def edit(folder):
        path = folder / name
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data, indent=1))
    return edit


def write(name, content: bytes | str):
    def edit(folder):
        (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return edit


def cut_weights(keep):
    """``model.safetensors`` cut to ``keep(size)`` bytes (a copy or download cut short)."""
    def edit(folder):
        path = folder / SAFETENSORS
        data = path.read_bytes()
        path.write_bytes(data[:keep(len(data))])
    return edit


def pickle_only(folder):
    import torch
    from safetensors.torch import load_file
    torch.save(load_file(folder / SAFETENSORS), folder / "pytorch_model.bin")
    (folder / SAFETENSORS).unlink()


def no_weights(folder):
    (folder / SAFETENSORS).unlink()


def scored(edit, which="detector"):
    """``xlsr score`` of a copy of the detector (or another folder) changed by ``edit``."""
    def setup(tmp, fx):
        folder = _copy(fx, tmp, which)
        edit(folder)
        return ["score", str(folder), _wav(fx), "--out", str(tmp / "s.csv")]
    return setup


def trained_from(edit):
    """``xlsr train`` from a copy of the bare encoder changed by ``edit``: refused before any epoch."""
    def setup(tmp, fx):
        folder = _copy(fx, tmp, "bare")
        edit(folder)
        m = fx["manifests"]
        return ["train", "--stage", "1", "--model", str(folder), "--train", str(m / "train.csv"), "--dev",
                str(m / "dev.csv"), "--out", str(tmp / "s1")]
    return setup


def pushed(edit=None, repo="you/xlsr-detector", *extra):
    def setup(tmp, fx):
        folder = _copy(fx, tmp)
        if edit:
            edit(folder)
        return ["push", str(folder), repo, *extra]
    return setup


def yaml_file(text, command):
    """A preset (``run``) or a training config (``train``) holding ``text``."""
    def setup(tmp, fx):
        path = tmp / "given.yaml"
        path.write_bytes(text.encode())
        if command == "run":
            return ["run", "--preset", str(path), "--run-dir", str(tmp / "run")]
        m = fx["manifests"]
        return ["train", "--stage", "1", "--model", str(fx["bare"]), "--train", str(m / "train.csv"),
                "--dev", str(m / "dev.csv"), "--out", str(tmp / "s1"), "--config", str(path)]
    return setup


def out_at(command, kind):
    """``command``'s output folder given as an existing file, below a file, or read-only."""
    def setup(tmp, fx):
        target = tmp / "target"
        if kind in ("file", "below a file"):
            target.write_text("x")
        elif kind == "read-only file":
            target.mkdir()
            (target / "s.csv").write_text("kept")
            read_only(fx, target / "s.csv", make=False)
        else:
            read_only(fx, target)
        out = target / "sub" if kind == "below a file" else target
        m = fx["manifests"]
        return {"train": ["train", "--stage", "1", "--model", str(fx["bare"]), "--train", str(m / "train.csv"),
                          "--dev", str(m / "dev.csv"), "--out", str(out)],
                "manifest": ["manifest", "--dataset", "asvspoof2019-la", "--root", str(fx["demo"]), "--out", str(out)],
                "run": ["run", "--preset", "cpu-smoke", "--run-dir", str(out)],
                "kaggle-kernel": ["kaggle-kernel", "--id", "me/k", "--out", str(out), "--repo-url", "https://x/y"],
                "score": ["score", str(fx["detector"]), _wav(fx), "--out", str(out / "s.csv")],
                }[command]
    return setup


def read_only(fx, folder, make=True):
    """``folder`` (made) faked read-only for this test: root passes permission bits, so ``os.access``
    answers for it as for a read-only file system."""
    if make:
        folder.mkdir()
    mp, real_access = fx["monkeypatch"], os.access

    def access(path, mode, *a, **kw):
        inside = pathlib.Path(path).resolve().is_relative_to(folder.resolve())
        return False if inside and mode & os.W_OK else real_access(path, mode, *a, **kw)
    mp.setattr(os, "access", access)


def full_disk(free=1024):
    """``shutil.disk_usage`` says only ``free`` bytes are left."""
    def patch(fx):
        usage = namedtuple("usage", "total used free")
        fx["monkeypatch"].setattr(shutil, "disk_usage", lambda p: usage(2**40, 2**40 - free, free))
    return patch


def failing_write(name, code):
    """Writing a file called ``name`` fails with ``code`` (ENOSPC, EROFS) at the moment of writing."""
    def patch(fx):
        real = pathlib.Path.write_text

        def write_text(self, *a, **kw):
            if self.name == name:
                raise OSError(code, os.strerror(code), str(self))
            return real(self, *a, **kw)
        fx["monkeypatch"].setattr(pathlib.Path, "write_text", write_text)
    return patch


def patched(patch, setup):
    """``setup`` with the environment changed by ``patch(fx)`` first."""
    def run(tmp, fx):
        patch(fx)
        return setup(tmp, fx)
    return run


def no_credentials(fx):
    import huggingface_hub
    fx["monkeypatch"].delenv("HF_TOKEN", raising=False)
    fx["monkeypatch"].setattr(huggingface_hub, "get_token", lambda: None)


def manifest_write_fails(code):
    """The manifest is built, then its first CSV cannot be written (``code``)."""
    def patch(fx):
        from xlsr_helpers.data.manifest import ManifestResult
        real = ManifestResult.write

        def write(self, out):
            raise OSError(code, os.strerror(code), str(pathlib.Path(out) / "train.csv"))
        fx["monkeypatch"].setattr(ManifestResult, "write", write)
        assert real is not write
    return patch


ENOSPC, EROFS = errno.ENOSPC, errno.EROFS


def app_args(*extra, detector="detector"):
    """``xlsr app`` on the fixture's detector (or a missing folder): refused before anything is served."""
    def setup(tmp, fx):
        return ["app", str(fx["detector"] if detector == "detector" else tmp / "no-model"), *extra]
    return setup


def no_gradio(fx):
    """gradio not installed: importing it fails as it does without the package."""
    import sys
    fx["monkeypatch"].setitem(sys.modules, "gradio", None)


def port_taken(fx):
    """Another process listens on the port the row asks for (``fx['port']``)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    fx["port"], fx["held"] = s.getsockname()[1], s  # held (listening) as long as the test's fx


def app_on_taken_port(tmp, fx):
    port_taken(fx)
    return ["app", str(fx["detector"]), "--port", str(fx["port"])]


def space_args(*extra, out="new"):
    """``xlsr space`` of the fixture's detector into ``tmp/space`` (``out``: new, not empty, a file)."""
    def setup(tmp, fx):
        target = tmp / "space"
        if out == "not empty":
            target.mkdir()
            (target / "mine.txt").write_text("keep")
        elif out == "file":
            target.write_text("a file")
        return ["space", str(fx["detector"]), "--out", str(target), *extra]
    return setup


def space_pushed(folder="detector", *extra):
    """``xlsr push FOLDER --space ...``: a detector folder (not a Space) or the given ``extra``."""
    def setup(tmp, fx):
        return ["push", str(_copy(fx, tmp)) if folder == "detector" else str(tmp / folder), *extra]
    return setup
