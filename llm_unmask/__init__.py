"""looking-right: sequence labeling with decoder LLMs whose chosen layers look right."""

__version__ = "0.1.0"
