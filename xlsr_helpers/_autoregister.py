"""Register ``XlsrDetector`` with transformers' Auto classes as soon as transformers' auto module is
loaded, so that ``import xlsr_helpers`` stays light (no torch for ``xlsr eer``) yet
``AutoModelForAudioClassification`` and ``pipeline`` know every head afterwards.

The auto module can load in the middle of the wav2vec2 module's own import (transformers'
``modeling_layers`` imports it); registering then would import the detector, which needs the
half-loaded wav2vec2 classes. So both modules are watched and the registration runs once neither
is still loading."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

TRIGGERS = ("transformers.models.auto.modeling_auto", "transformers.models.wav2vec2.modeling_wav2vec2")


def register() -> None:
    from xlsr_helpers.model import detector  # noqa: F401  (registers on import)


def _loading(name: str) -> bool:
    module = sys.modules.get(name)
    return module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)


def _register_when_settled() -> None:
    if TRIGGERS[0] in sys.modules and not any(_loading(t) for t in TRIGGERS):
        register()


class _RegisterAfterLoad(importlib.abc.MetaPathFinder):
    def __init__(self):
        self.waiting = set(TRIGGERS) - set(sys.modules)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.waiting:
            return None
        self.waiting.discard(fullname)
        if not self.waiting:
            sys.meta_path.remove(self)
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]  # find the real spec without us
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            if self.waiting:
                sys.meta_path.insert(0, self)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def exec_then_register(module):
                exec_module(module)
                module.__spec__._initializing = False  # importlib clears it only after we return
                _register_when_settled()
            spec.loader.exec_module = exec_then_register
        return spec


def install() -> None:
    if TRIGGERS[0] in sys.modules:
        _register_when_settled()
    if not any(isinstance(f, _RegisterAfterLoad) for f in sys.meta_path) and set(TRIGGERS) - set(sys.modules):
        sys.meta_path.insert(0, _RegisterAfterLoad())
