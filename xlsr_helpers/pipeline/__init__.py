"""The notebook chain: runner, notebook parameters, run folder, Kaggle kernels."""
