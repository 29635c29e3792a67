"""Training a stage: config schema, stage module, trainer, callbacks, averaging, stage state."""
