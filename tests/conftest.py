"""Shared fixtures: a tiny demo corpus in the ASVspoof 2019 LA layout, built once per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    from xlsr_helpers.demo import make_demo_corpus
    return make_demo_corpus(tmp_path_factory.mktemp("demo"), seed=0, size="tiny")


@pytest.fixture(scope="session")
def demo_manifests(demo_root, tmp_path_factory):
    from xlsr_helpers.manifest import build_manifest
    res = build_manifest("asvspoof2019-la", demo_root)
    out = tmp_path_factory.mktemp("manifests")
    res.write(out)
    return out
