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
