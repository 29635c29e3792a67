"""xlsr_helpers: audio deepfake detection with XLS-R (data, metrics, model, training, notebooks)."""

__version__ = "0.1.0"
