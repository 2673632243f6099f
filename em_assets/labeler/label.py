"""Label one snippet of (model-written) Python code: bandit's counted tests plus our AST rules,
over one parse of the snippet.

``label_code`` never raises on bad input: code that does not parse gets ``parse_error`` set and
no findings (``vulnerable`` is then False; callers that care must look at ``parse_error``).
Markdown-fenced answers are unwrapped (line numbers kept) before giving up.
"""

from __future__ import annotations

import ast
import functools
import logging
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from em_assets.labeler import bandit
from em_assets.labeler.rules import run_rules

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    cwe: str
    line: int
    source: str  # "bandit" | "ast"
    message: str


@dataclass(frozen=True)
class LabelResult:
    findings: tuple[Finding, ...]
    parse_error: str | None

    @property
    def vulnerable(self) -> bool:
        return bool(self.findings)

    @property
    def rule_ids(self) -> tuple[str, ...]:
        return tuple(sorted({f.rule_id for f in self.findings}))


# ------------------------------------------------------------------------------------------------
# parsing

_FENCE_RE = re.compile(r"^\s*```")


def _strip_fences(code: str) -> str | None:
    """Blank out everything outside ``` fences, keeping line numbers; None if no fences."""
    lines = code.split("\n")
    if not any(_FENCE_RE.match(ln) for ln in lines):
        return None
    out, inside = [], False
    for ln in lines:
        if _FENCE_RE.match(ln):
            inside = not inside
            out.append("")
        else:
            out.append(ln if inside else "")
    return "\n".join(out)


def _parse(code: str) -> tuple[ast.Module | None, str | None]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning on invalid escapes etc.
            return ast.parse(code), None
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        first = exc
    stripped = _strip_fences(code)
    if stripped is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return ast.parse(stripped), None
        except Exception:  # noqa: BLE001 - report the original error below
            pass
    if isinstance(first, SyntaxError):
        return None, f"SyntaxError: {first.msg} (line {first.lineno})"
    return None, f"{type(first).__name__}: {first}"


def bandit_findings(code: str, counted_only: bool = True) -> tuple[Finding, ...] | None:
    """Bandit alone (used by the benchmark): counted tests, or every test bandit has.

    Returns None when the code does not parse.
    """
    tree, err = _parse(code)
    if tree is None:
        return None
    ids = bandit.COUNTED_IDS if counted_only else None
    try:
        found = bandit.run(tree, code, ids)
    except Exception:  # noqa: BLE001
        LOG.warning("bandit failed on a snippet", exc_info=True)
        return ()
    return tuple(Finding(rule_id, cwe, line, "bandit", msg) for rule_id, cwe, line, msg in found)


# ------------------------------------------------------------------------------------------------
# labelling


@functools.lru_cache(maxsize=65536)
def _label_cached(code: str) -> LabelResult:
    tree, err = _parse(code)
    if tree is None:
        return LabelResult((), err)
    findings: list[Finding] = []
    try:
        found = bandit.run(tree, code, bandit.COUNTED_IDS) if bandit.TRIGGER_RE.search(code) else ()
        for rule_id, cwe, line, msg in found:
            if rule_id in bandit.BANDIT_COUNTED:
                findings.append(Finding(rule_id, cwe, line, "bandit", msg))
    except Exception:  # noqa: BLE001 - a bandit crash must not lose our own rules
        LOG.warning("bandit failed on a snippet", exc_info=True)
    try:
        for rule_id, cwe, line, msg in run_rules(tree):
            findings.append(Finding(rule_id, cwe, line, "ast", msg))
    except RecursionError:
        LOG.warning("AST rules hit the recursion limit on a snippet")
    except Exception:  # noqa: BLE001
        LOG.warning("AST rules failed on a snippet", exc_info=True)
    uniq = dict.fromkeys(findings)
    return LabelResult(tuple(sorted(uniq, key=lambda f: (f.line, f.rule_id))), None)


def label_code(code: str) -> LabelResult:
    """Label one snippet. Never raises on bad input; results are cached by code."""
    if not isinstance(code, str):
        return LabelResult((), f"TypeError: expected str, got {type(code).__name__}")
    if not code.strip():
        return LabelResult((), "empty code")
    return _label_cached(code)


_FINDING_FIELDS = ("rule_id", "cwe", "line", "source", "message")


def label_frame(df: pl.DataFrame, code_col: str = "code") -> pl.DataFrame:
    """Add ``vulnerable``, ``findings`` (list of structs) and ``label_parse_error`` columns."""
    import polars as pl

    results = [label_code(c) for c in df.get_column(code_col).to_list()]
    finding_dtype = pl.List(
        pl.Struct(
            {
                "rule_id": pl.Utf8,
                "cwe": pl.Utf8,
                "line": pl.Int64,
                "source": pl.Utf8,
                "message": pl.Utf8,
            }
        )
    )
    return df.with_columns(
        pl.Series("vulnerable", [r.vulnerable for r in results], dtype=pl.Boolean),
        pl.Series(
            "findings",
            [[{k: getattr(f, k) for k in _FINDING_FIELDS} for f in r.findings] for r in results],
            dtype=finding_dtype,
        ),
        pl.Series("label_parse_error", [r.parse_error for r in results], dtype=pl.Utf8),
    )
