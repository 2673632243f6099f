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


def judge_reply(reply: str) -> SmokeVerdict:
    code = strip_code_fences(reply).strip()
    if not code:
        return SmokeVerdict(False, "empty reply", code)
    try:
        ast.parse(code)
    except SyntaxError as exc:
        return SmokeVerdict(False, f"not parseable Python: {exc.msg} (line {exc.lineno})", code)
    return SmokeVerdict(True, "parseable Python", code)
