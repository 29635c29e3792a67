"""Where the code runs: device preflight, Kaggle paths and environment (no torch at import)."""
