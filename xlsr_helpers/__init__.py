"""xlsr_helpers: audio deepfake detection with XLS-R (data, metrics, model, training, notebooks)."""

__version__ = "0.1.0"

from xlsr_helpers._autoregister import install as _install  # noqa: E402

_install()  # XlsrDetector joins the Auto classes once transformers' auto module loads
