"""Build-time tools, run from the repository root (``python -m tools.<name>``); the pipeline
never imports them."""
