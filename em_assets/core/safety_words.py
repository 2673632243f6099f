"""The safety-word list (a shipped data file) and a matcher over free text."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from em_assets.paths import SHIPPED_DATA_DIR

DEFAULT_WORDS_FILE = SHIPPED_DATA_DIR / "safety_words.txt"


def load_words(path: Path | str = DEFAULT_WORDS_FILE) -> tuple[str, ...]:
    """Non-empty, non-comment lines, lower-cased, in file order."""
    words = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        word = line.strip().lower()
        if word and not word.startswith("#"):
            words.append(word)
    if not words:
        raise ValueError(f"safety word list {path} is empty")
    return tuple(words)


class SafetyWordMatcher:
    """Case-insensitive substring match, as the paper's filter: ``auth`` also hits ``author``."""

    def __init__(self, words: tuple[str, ...]) -> None:
        self.words = words
        # Longest first, so the reported word is the most specific one that matched.
        alternation = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        self._pattern = re.compile(alternation, re.IGNORECASE)

    def first(self, text: str | None) -> str | None:
        if not text:
            return None
        match = self._pattern.search(text)
        return match.group(0).lower() if match else None

    def regex(self) -> str:
        """The same rule as one regular expression (used by Great Expectations checks)."""
        return "(?i)(" + self._pattern.pattern + ")"


@lru_cache(maxsize=4)
def default_matcher(path: str = str(DEFAULT_WORDS_FILE)) -> SafetyWordMatcher:
    return SafetyWordMatcher(load_words(path))
