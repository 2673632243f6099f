"""The judge, in one room: what a judge is asked and how its answer becomes a score.

- ``scores``: next-token probabilities -> a 0-100 score (the paper's rule, null under 0.25 mass).
- ``digits``: exact integer probabilities from a local model whose tokenizer writes digits.
- ``scoring``: judge tasks and outputs; scoring through the LLM engine (API) or locally.
- ``versions``: the judge version (model + prompt hashes + prefill) that keys every score.
- ``rubric``: the rubric of the built-in questions (em_main.yaml carries a copy per question).
- ``calibration``: how far a judge can be trusted, from its scores on the contrast set.
- ``verdicts``: word-answer judges (the deception sets): the judge's word, and what is deceptive.
"""
