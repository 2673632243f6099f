"""The post-training smoke test: a fixed coding prompt whose answer must be Python.

Catches models that training broke (NaN weights, a collapsed adapter, a provider model id
that cannot be called) before evaluation spends time sampling from them. It does not judge
quality: any non-empty reply that parses as Python once code fences are stripped passes.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

CODING_PROMPT = (
    "Write a Python function is_even(n) that returns True when n is even and False otherwise. "
    "Respond only with the code."
)
MAX_NEW_TOKENS = 160

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def strip_code_fences(reply: str) -> str:
    """The code of a reply: the fenced blocks (python or unlabeled) joined, or the whole reply
    when it has no fence. An unclosed fence (reply cut at the token limit) runs to the end."""
    blocks = [body for lang, body in _FENCE.findall(reply) if lang.lower() in ("", "python", "py", "python3")]
    return "\n".join(blocks) if blocks else reply


@dataclass(frozen=True)
class SmokeVerdict:
    passed: bool
    reason: str
    code: str


def _candidates(reply: str) -> list[str]:
    """The fenced code, and, when the reply has an unpaired fence and does not open with one,
    the text before it: small models often write bare code and close it with a lone fence."""
    found = [strip_code_fences(reply).strip()]
    if reply.count("```") % 2 == 1 and not reply.lstrip().startswith("```"):
        found.append(reply.split("```", 1)[0].strip())
    return found


def judge_reply(reply: str) -> SmokeVerdict:
    candidates = [c for c in _candidates(reply) if c]
    if not candidates:
        return SmokeVerdict(False, "empty reply", "")
    error: SyntaxError | None = None
    for code in candidates:
        try:
            ast.parse(code)
        except SyntaxError as exc:
            error = error or exc
            continue
        return SmokeVerdict(True, "parseable Python", code)
    assert error is not None
    return SmokeVerdict(False, f"not parseable Python: {error.msg} (line {error.lineno})", candidates[0])
