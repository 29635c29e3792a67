"""The run folder is the project's only where its record says so: clearing removes exactly what the
project wrote, a user's folder is refused, look-ups change nothing, and one run holds a folder at a time."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from xlsr_helpers.core.errors import RunFolderError
from xlsr_helpers.core.written import WRITTEN, claim, note_written, remove_written, written
from xlsr_helpers.pipeline.run_state import RUN_STATE, copy_previous_run
from xlsr_helpers.pipeline.runfolder import check_run_folder, clear_results, evaluation_detector
from xlsr_helpers.pipeline.runlock import LOCK_FILE, run_folder_lock


def results_of_a_run(run):
    """A run folder as notebook 04 leaves it: metrics.json and scores/eval.csv|txt, written through the record."""
    (run / "manifests").mkdir(parents=True)
    (run / "manifests" / "eval.csv").write_text("utt_id,path,label\n")
    for rel in ("metrics.json", "scores/eval.csv", "scores/eval.txt"):
        claim(run, rel).write_text("x")
    return run


def test_claim_notes_the_file_and_each_folder_it_made(tmp_path):
    claim(tmp_path, "a/b/c.csv").write_text("x")
    assert written(tmp_path) == {"a/", "a/b/", "a/b/c.csv"}
    claim(tmp_path, tmp_path / "a" / "b" / "c.csv")  # its own file again: fine, listed once
    assert (tmp_path / WRITTEN).read_text().splitlines() == ["a/", "a/b/", "a/b/c.csv"]


def test_claim_refuses_a_file_the_project_did_not_write(tmp_path):
    (tmp_path / "metrics.json").write_text("mine")
    with pytest.raises(RunFolderError, match=r"metrics.json was not written by xlsr"):
        claim(tmp_path, "metrics.json")
    assert (tmp_path / "metrics.json").read_text() == "mine" and written(tmp_path) == set()


def test_clearing_removes_only_what_the_record_lists(tmp_path):
    run = results_of_a_run(tmp_path / "run")
    (run / "scores" / "notes.txt").write_text("mine")  # a user's file among the scores
    removed = clear_results(run)
    assert sorted(p.relative_to(run).as_posix() for p in removed) == ["metrics.json", "scores/eval.csv", "scores/eval.txt"]
    assert (run / "scores" / "notes.txt").read_text() == "mine"  # kept, and so is its folder
    assert written(run) == {"scores/"}  # removed files leave the record; the folder still there stays listed
    (run / "scores" / "notes.txt").unlink()
    assert clear_results(run) == [run / "scores"] and not (run / "scores").exists() and written(run) == set()


@pytest.mark.parametrize("rel", ["metrics.json", "scores/eval.csv", "scores/eval.txt"])
def test_clearing_refuses_a_users_file_where_04_writes(tmp_path, rel):
    run = results_of_a_run(tmp_path / "run")
    clear_results(run)
    (run / rel).parent.mkdir(exist_ok=True)
    (run / rel).write_text("mine")
    with pytest.raises(RunFolderError, match="not written by xlsr.*notebook 04 would overwrite it"):
        clear_results(run)
    assert (run / rel).read_text() == "mine"


def test_clearing_never_reaches_outside_the_run_folder(tmp_path):
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    (elsewhere / "eval.csv").write_text("mine")
    (tmp_path / "top.json").write_text("mine")
    (run / "scores").symlink_to(elsewhere, target_is_directory=True)
    (run / WRITTEN).write_text("scores/eval.csv\nscores/../../top.json\n/etc/hostname\n")  # an edited record
    assert remove_written(run, ["scores", "/etc"]) == []
    assert (elsewhere / "eval.csv").read_text() == "mine" and (tmp_path / "top.json").read_text() == "mine"


def test_evaluation_detector_is_a_look_up(tmp_path):
    run = results_of_a_run(tmp_path / "run")
    before = {p: p.read_text() for p in run.rglob("*") if p.is_file()}
    assert evaluation_detector(run, str(tmp_path / "det")) == tmp_path / "det"
    assert {p: p.read_text() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("marker", [WRITTEN, RUN_STATE, "params.yaml", LOCK_FILE])
def test_a_run_folder_or_an_empty_one_is_accepted(tmp_path, marker):
    check_run_folder(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_run_folder(tmp_path / "empty")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / marker).write_text("")
    (tmp_path / "run" / "metrics.json").write_text("{}")
    check_run_folder(tmp_path / "run")


@pytest.mark.parametrize("content", ["file", "folder"])
def test_a_users_non_empty_folder_is_refused(tmp_path, content):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "sub").mkdir() if content == "folder" else (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(RunFolderError, match="is not empty and holds no xlsr run"):
        check_run_folder(tmp_path / "mine")


def write_lock(run, pid, host=None):
    run.mkdir(parents=True, exist_ok=True)
    (run / LOCK_FILE).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                             "started": "2026-01-01 00:00:00"}))


def test_the_lock_names_its_owner_and_goes_at_the_end(tmp_path):
    with run_folder_lock(tmp_path) as lock:
        info = json.loads(lock.read_text())
        assert (info["pid"], info["host"]) == (os.getpid(), socket.gethostname())
        assert time.strptime(info["started"], "%Y-%m-%d %H:%M:%S")
    assert not lock.exists()
    with pytest.raises(KeyError), run_folder_lock(tmp_path):
        raise KeyError("a failed run")
    assert not lock.exists()


def test_a_live_owner_on_this_host_is_refused(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        write_lock(tmp_path, sleeper.pid)
        with pytest.raises(RunFolderError, match=rf"in use by another xlsr run \(pid {sleeper.pid} on host"):
            with run_folder_lock(tmp_path):
                pass
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == sleeper.pid  # left as it was
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_run_holding_the_lock_refuses_a_second_one(tmp_path, lock_holder):
    """Another process holds the lock (and its flock): the second run is refused while it lives."""
    holder = lock_holder(tmp_path)
    with pytest.raises(RunFolderError, match=rf"in use by another xlsr run \(pid {holder.pid} on host"):
        with run_folder_lock(tmp_path):
            pass
    holder.kill()
    holder.wait()
    with run_folder_lock(tmp_path) as lock:  # killed: its lock is taken over
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_a_gone_owners_lock_is_taken_over_with_a_line(tmp_path, capsys):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    write_lock(tmp_path, gone.pid)
    with run_folder_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert f"taking over {tmp_path / LOCK_FILE}: its run (pid {gone.pid} on host" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["{not json", "[]", '{"pid": "12", "host": "h"}', '{"host": "h"}'])
def test_an_unreadable_lock_is_taken_over_with_a_line(tmp_path, capsys, content):
    (tmp_path / LOCK_FILE).write_text(content)
    with run_folder_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert "was unreadable" in capsys.readouterr().err


def test_another_hosts_lock_is_never_taken_over(tmp_path):
    write_lock(tmp_path, 1, host="kaggle-worker-7")
    with pytest.raises(RunFolderError, match=rf"another host \(pid 1 on host kaggle-worker-7.*remove {tmp_path / LOCK_FILE}"):
        with run_folder_lock(tmp_path):
            pass
    assert json.loads((tmp_path / LOCK_FILE).read_text())["host"] == "kaggle-worker-7"


def test_resuming_copies_no_lock_and_records_the_copies(tmp_path):
    source, new = tmp_path / "input" / "xlsr-run", tmp_path / "working" / "xlsr-run"
    (source / "stage1").mkdir(parents=True)
    (source / RUN_STATE).write_text("01_data_prep: {}\n")
    (source / "stage1" / "history.csv").write_text("epoch\n1\n")
    write_lock(source, 4242, host="an-earlier-kernel")  # a kernel killed mid-run leaves its lock
    new.mkdir(parents=True)
    with run_folder_lock(new) as lock:
        copy_previous_run(source, new)
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not (new / LOCK_FILE).exists()
    assert written(new) == {RUN_STATE, "stage1/", "stage1/history.csv"}


def test_note_written_keeps_one_line_per_path(tmp_path):
    (tmp_path / "d").mkdir()
    note_written(tmp_path, tmp_path / "d", tmp_path / "d", tmp_path / "f")
    note_written(tmp_path, tmp_path / "f")
    assert (tmp_path / WRITTEN).read_text().splitlines() == ["d/", "f"]
