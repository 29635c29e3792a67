"""What a run folder keeps against Kaggle's 20 GB output quota."""

from xlsr_helpers.runtime import kaggle_env


def _files(folder, sizes):
    for name, size in sizes.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"x" * size)


def test_folder_bytes_counts_files_under_it_and_leaves_out_the_names_given(tmp_path):
    _files(tmp_path, {"a": 10, "sub/b": 7, "sub/deeper/c": 5, "lock": 3})
    (tmp_path / "link").symlink_to(tmp_path / "a")  # a link is not a second copy of the file
    assert kaggle_env.folder_bytes(tmp_path) == 25
    assert kaggle_env.folder_bytes(tmp_path, skip=("lock",)) == 22
    assert kaggle_env.folder_bytes(tmp_path / "sub", skip=("deeper",)) == 7


def test_the_kept_line_warns_above_80_percent_of_the_quota(tmp_path, monkeypatch):
    run = tmp_path / "working" / "xlsr-run"
    _files(tmp_path / "working", {"xlsr-run/scores.csv": 600, "code/x.py": 100})
    note, near = kaggle_env.kept_note(run, 600)
    assert (note, near) == (f"{run} keeps 600 bytes (0.00 GB)", False)  # not on Kaggle: no quota
    monkeypatch.setenv(kaggle_env.KAGGLE_ROOT_ENV, str(tmp_path))
    monkeypatch.setattr(kaggle_env, "OUTPUT_QUOTA_BYTES", 1000)
    note, near = kaggle_env.kept_note(run, 600)  # 700 of 1000 bytes: 70 %
    assert not near and note.endswith(f"{tmp_path / 'working'} holds 700 bytes, 70.0 % of Kaggle's 20 GB output quota")
    note, near = kaggle_env.kept_note(run, 750)  # what the folder will keep counts, not what it holds now: 85 %
    assert near and "holds 850 bytes, 85.0 %" in note and "(above 80 %): move caches to /kaggle/temp" in note
    note, near = kaggle_env.kept_note(run, 1000)
    assert near and "110.0 %" in note and "(over it: the output is cut)" in note
