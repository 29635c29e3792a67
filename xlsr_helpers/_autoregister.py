"""Register ``XlsrDetector`` with transformers' Auto classes as soon as transformers' auto module is
loaded, so that ``import xlsr_helpers`` stays light (no torch for ``xlsr eer``) yet
``AutoModelForAudioClassification`` and ``pipeline`` know every head afterwards."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

TRIGGER = "transformers.models.auto.modeling_auto"


def register() -> None:
    from . import detector_model  # noqa: F401  (registers on import)


class _RegisterAfterLoad(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TRIGGER:
            return None
        sys.meta_path.remove(self)  # find the real spec without us, then wrap its loader
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_register(module):
                exec_module(module)
                register()
            spec.loader.exec_module = exec_then_register
        return spec


def install() -> None:
    if TRIGGER in sys.modules:
        register()
    elif not any(isinstance(f, _RegisterAfterLoad) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterLoad())
