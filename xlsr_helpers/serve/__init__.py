"""Sharing and deploying a trained detector: the local web demo, the Hugging Face Space folder, ONNX
export and onnxruntime scoring. Above the pipeline, below the command line; nothing here trains."""
