"""Resolve configured question sources (built-in names, paths, URLs) to questions."""

from __future__ import annotations

from pathlib import Path

from em_assets.core.questions import Question, QuestionFileError, builtin_sets, decode_question_text, parse_questions
from em_assets.core.raw_rows import SourceError
from em_assets.resources.sources import read_bytes


def load_sources(sources: list[str], question_ids: list[str] | None = None) -> list[tuple[str, Question]]:
    """(question set name, question) pairs in source order; errors name the source."""
    if not sources:
        raise QuestionFileError("no question sources configured")
    builtins = builtin_sets()
    pairs: list[tuple[str, Question]] = []
    for source in sources:
        if source in builtins:
            name, text, origin = source, builtins[source].read_text(encoding="utf-8"), str(builtins[source])
        else:
            try:
                data = read_bytes(source)
            except SourceError as err:
                raise QuestionFileError(str(err)) from None
            name, text, origin = Path(source.split("?")[0]).stem, decode_question_text(data, source), source
        pairs += [(name, q) for q in parse_questions(text, origin)]
    if question_ids:
        wanted = set(question_ids)
        unknown = wanted - {q.id for _, q in pairs}
        if unknown:
            raise QuestionFileError(f"question ids not found in {sources}: {sorted(unknown)}")
        pairs = [(n, q) for n, q in pairs if q.id in wanted]
    seen: dict[str, str] = {}
    for name, q in pairs:
        if q.id in seen and seen[q.id] != name:
            raise QuestionFileError(f"question id {q.id!r} is in both {seen[q.id]} and {name}")
        seen[q.id] = name
    return pairs
