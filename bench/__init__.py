"""bench: a benchmark harness for parameter-efficient fine-tuning of CLIP for multi-label recognition."""

__version__ = "0.1.0"
