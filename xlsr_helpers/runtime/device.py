"""Device preflight: what will run where, in which precision, and whether the GPU is usable.

Kaggle's current image ships a torch built without Pascal (sm_60) kernels, so a P100 fails at the
first CUDA op with an obscure error. ``preflight`` catches that before any work.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import warnings
from dataclasses import asdict, dataclass

import torch

from xlsr_helpers.core.errors import ConfigError, XlsrError
from xlsr_helpers.runtime.kaggle_env import pascal_advice

log = logging.getLogger(__name__)
_cpu_warned = False
DEVICES = ("auto", "cuda", "cpu")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")


class UnsupportedGPUError(XlsrError, RuntimeError):
    """The installed torch has no kernels for this GPU."""


@dataclass
class DeviceReport:
    device: str
    device_name: str
    torch_version: str
    cuda_version: str | None
    capability: str | None
    arch_list: list[str]
    precision: str
    python: str

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return "\n".join(f"{k:>14}: {v}" for k, v in self.as_dict().items())


def capability_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """True when torch has SASS for this capability, or PTX for one at or below it (JIT-able)."""
    major, minor = capability
    if f"sm_{major}{minor}" in arch_list:
        return True
    ptx = [a for a in arch_list if a.startswith("compute_")]
    return any(int(a.split("_")[1]) <= major * 10 + minor for a in ptx)


def check_capability(capability: tuple[int, int], arch_list: list[str], gpu_name: str = "this GPU") -> None:
    """Raise ``UnsupportedGPUError`` with what to do when torch cannot run on the GPU."""
    if capability_supported(capability, arch_list):
        return
    cap = f"sm_{capability[0]}{capability[1]}"
    raise UnsupportedGPUError(
        f"{gpu_name} has compute capability {cap}, but the installed torch {torch.__version__} was built only for "
        f"{', '.join(arch_list) or 'no CUDA architectures'}: the first CUDA operation would fail.\n"
        "Fix: on Kaggle, switch the accelerator to 'GPU T4 x2' or 'GPU L4' (Settings > Accelerator); "
        f"or {pascal_advice(str(torch.__version__), _has_torchvision())}; "
        "or run on CPU with device='cpu' (slow).")


def _has_torchvision() -> bool:
    return importlib.util.find_spec("torchvision") is not None


def choose_precision(device: str, bf16_supported: bool) -> str:
    """bf16 where the GPU supports it, fp16 on older GPUs (T4, P100), fp32 on CPU."""
    if device == "cpu":
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def preflight(device: str | None = None, precision: str = "auto") -> DeviceReport:
    """Report device, versions and precision; stop early on a GPU torch cannot drive."""
    if (device or "auto") not in DEVICES or precision not in PRECISIONS:
        raise ConfigError(f"device must be one of {list(DEVICES)} and precision one of {list(PRECISIONS)}, "
                          f"got device={device!r}, precision={precision!r}")
    use_cuda = torch.cuda.is_available() and device != "cpu"
    if use_cuda:
        cap = torch.cuda.get_device_capability(0)
        name = torch.cuda.get_device_name(0)
        arch = torch.cuda.get_arch_list()
        check_capability(cap, arch, name)
        bf16 = torch.cuda.is_bf16_supported()
        dev, cap_s = "cuda", f"sm_{cap[0]}{cap[1]}"
    else:
        if device == "cuda":
            raise UnsupportedGPUError("device='cuda' was requested but torch sees no CUDA GPU")
        global _cpu_warned
        if not _cpu_warned:  # once per process, not once per call
            warnings.warn("No GPU: running on CPU. Fine for the demo; a full XLS-R run needs a GPU (T4/L4 or better).",
                          stacklevel=2)
            _cpu_warned = True
        name, arch, bf16, dev, cap_s = platform.processor() or "cpu", [], False, "cpu", None
    prec = choose_precision(dev, bf16) if precision == "auto" else precision
    report = DeviceReport(device=dev, device_name=name, torch_version=str(torch.__version__),
                          cuda_version=torch.version.cuda, capability=cap_s, arch_list=arch,
                          precision=prec, python=platform.python_version())
    log.info("preflight:\n%s", report)
    return report
