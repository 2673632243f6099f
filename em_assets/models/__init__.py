"""Loading base models: the embedded SmolLM2 GGUF, a local directory, or a hub id."""
