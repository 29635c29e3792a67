"""Bottom layer: errors, UTF-8 text files, fingerprints, bundled resources (no torch)."""
