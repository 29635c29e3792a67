"""Content fingerprints: they follow the bytes and rows that matter and nothing else."""

import hashlib
import os
import re

import pandas as pd

from xlsr_helpers.core.fingerprint import file_digest, manifest_fingerprint, model_identity


def test_a_file_digest_is_its_sha256_and_follows_every_change(tmp_path):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"abcd")
    assert file_digest(f) == hashlib.sha256(b"abcd").hexdigest()
    stamp = f.stat().st_mtime_ns
    f.write_bytes(b"abcdef")  # another size, the same time stamp
    os.utime(f, ns=(stamp, stamp))
    assert file_digest(f) == hashlib.sha256(b"abcdef").hexdigest()
    f.write_bytes(b"ABCDEF")  # the same size, another time stamp
    os.utime(f, ns=(stamp + 10**9, stamp + 10**9))
    assert file_digest(f) == hashlib.sha256(b"ABCDEF").hexdigest()


def test_a_model_identity_follows_its_config_and_weights_only(tmp_path):
    config, weights = b'{"hidden_size": 4}', b"w1"
    (tmp_path / "config.json").write_bytes(config)
    (tmp_path / "model.safetensors").write_bytes(weights)
    (tmp_path / "README.md").write_text("card")
    first = model_identity(tmp_path)
    listing = (f"config.json:{hashlib.sha256(config).hexdigest()}\n"
               f"model.safetensors:{hashlib.sha256(weights).hexdigest()}\n")
    expected = hashlib.sha256(listing.encode()).hexdigest()[:16]
    assert first == f"sha256:{expected}" and re.fullmatch(r"sha256:[0-9a-f]{16}", first)
    (tmp_path / "README.md").write_text("another card")
    assert model_identity(tmp_path) == first
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    assert model_identity(tmp_path) != first
    assert model_identity("facebook/wav2vec2-xls-r-300m") == "hub:facebook/wav2vec2-xls-r-300m"


def test_a_manifest_fingerprint_is_its_trials_and_labels_in_order_whatever_the_index():
    df = pd.DataFrame({"utt_id": ["a", "b", "c"], "label": ["bonafide", "spoof", "spoof"], "path": ["/x/a", "/x/b", "/x/c"]})
    fp = manifest_fingerprint(df)
    assert re.fullmatch(r"3:[0-9a-f]{16}", fp)
    assert manifest_fingerprint(df.set_axis([10, 20, 30])) == fp  # a filtered copy keeps its old index
    assert manifest_fingerprint(df.assign(path=["/y/a", "/y/b", "/y/c"])) == fp  # the corpus moved
    assert manifest_fingerprint(df.assign(label=["bonafide", "spoof", "bonafide"])) != fp
    assert manifest_fingerprint(df.iloc[::-1]) != fp


def _expected_audio_fingerprint(contents: list[bytes]) -> str:
    """Worked out here from the rule: size + first and last 4 KiB of each file (all of a short one)."""
    k = 4 << 10
    parts = [hashlib.sha256(len(c).to_bytes(8, "little") + (c if len(c) <= 2 * k else c[:k] + c[-k:])).digest()
             for c in contents]
    return f"{len(contents)}:{hashlib.sha256(b''.join(parts)).hexdigest()[:16]}"


def test_an_audio_fingerprint_is_each_files_size_and_ends_in_order(tmp_path):
    from xlsr_helpers.core.fingerprint import audio_fingerprint
    short, edge, long = b"RIFF" + bytes(range(200)), bytes(8 << 10), os.urandom(100_000)
    paths = []
    for name, content in (("a.wav", short), ("b.wav", edge), ("c.flac", long)):
        (tmp_path / name).write_bytes(content)
        paths.append(str(tmp_path / name))
    fp = audio_fingerprint(paths)
    assert fp == _expected_audio_fingerprint([short, edge, long])
    assert audio_fingerprint(paths[::-1]) == _expected_audio_fingerprint([long, edge, short]) != fp
    assert audio_fingerprint([]) == _expected_audio_fingerprint([])
    many = [os.urandom(n) for n in range(0, 30_000, 60)]  # 500 files: read by several threads, kept in order
    for i, content in enumerate(many):
        (tmp_path / f"m{i}.wav").write_bytes(content)
    assert audio_fingerprint([tmp_path / f"m{i}.wav" for i in range(500)]) == _expected_audio_fingerprint(many)


def edited(content: bytes, at: int) -> bytes:
    return content[:at] + bytes([content[at] ^ 0xFF]) + content[at + 1:]


def test_an_audio_fingerprint_follows_the_audio_not_its_place_or_time(tmp_path):
    """Other audio under the same name (same size, even the same time stamp after a copy) is other
    data; the same bytes copied elsewhere, later, are the same data."""
    from xlsr_helpers.core.fingerprint import audio_fingerprint
    long = os.urandom(100_000)
    f = tmp_path / "a" / "x.wav"
    f.parent.mkdir()
    f.write_bytes(long)
    fp = audio_fingerprint([f])
    copy = tmp_path / "b" / "x.wav"
    copy.parent.mkdir()
    copy.write_bytes(long)
    os.utime(copy, ns=(10**18, 10**18))
    assert audio_fingerprint([copy]) == fp
    stamp = f.stat().st_mtime_ns
    for at, seen in ((0, True), (4 << 10, False), (100_000 - (4 << 10) - 1, False), (100_000 - (4 << 10), True),
                     (99_999, True)):
        f.write_bytes(edited(long, at))
        os.utime(f, ns=(stamp + at + 1, stamp + at + 1))  # a rewrite moves the time stamp
        assert (audio_fingerprint([f]) != fp) is seen, at  # only the middle of a long file is not read
        assert audio_fingerprint([f]) == _expected_audio_fingerprint([edited(long, at)])
    f.write_bytes(long + b"\0")  # one byte longer: another size
    assert audio_fingerprint([f]) != fp


def test_unreadable_audio_is_named_with_its_manifest(tmp_path):
    import pytest

    from xlsr_helpers.core.errors import ManifestError
    from xlsr_helpers.core.fingerprint import audio_fingerprint
    (tmp_path / "ok.wav").write_bytes(b"x")
    (tmp_path / "folder.wav").mkdir()
    paths = [tmp_path / "ok.wav", tmp_path / "gone.wav", tmp_path / "folder.wav"]
    with pytest.raises(ManifestError) as err:
        audio_fingerprint(paths, "train manifest")
    assert str(err.value) == (f"train manifest: 2 of 3 audio file(s) cannot be read: {tmp_path / 'gone.wav'} "
                              f"(No such file or directory), {tmp_path / 'folder.wav'} (Is a directory); "
                              "build the manifests again (notebook 01)")
    many = [tmp_path / f"m{i}.wav" for i in range(7)]
    with pytest.raises(ManifestError, match=r"7 of 7 .*m4.wav \(No such file or directory\) and 2 more;"):
        audio_fingerprint(many)
