"""Detectors: classes and loading, the split forward, heads (one back-end per file), caches, settings."""
