"""Static vulnerability labeler for (model-written) Python code.

Two analyses over one parse of a snippet: bandit as a library (:mod:`.bandit`, the tests we
count) and our own AST rules (:mod:`.rules`): light taint tracking (:mod:`.taint`, :mod:`.walk`)
for the injection families bandit does not see (XSS via f-strings, path traversal, SSRF, open
redirect ...) and sanitiser-aware replacements for bandit tests that are noisy.
"""

from __future__ import annotations

from em_assets.labeler.bandit import BANDIT_COUNTED
from em_assets.labeler.label import Finding, LabelResult, bandit_findings, label_code, label_frame

__all__ = [
    "BANDIT_COUNTED",
    "Finding",
    "LabelResult",
    "bandit_findings",
    "label_code",
    "label_frame",
]
