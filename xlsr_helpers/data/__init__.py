"""Corpora: descriptors, manifests, audio, augmentation, datasets, the demo corpus."""
