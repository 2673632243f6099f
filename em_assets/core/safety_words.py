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
        # Longest first, so the reported word is the most specific one that matched.
        self.words = tuple(sorted(words, key=len, reverse=True))

    def first(self, text: str | None) -> str | None:
        """A listed word the text contains, or None.

        Plain substring tests on the lower-cased text: ~10x faster than one case-insensitive
        regex alternation, which dominated the filter chain's time on 12,000 rows.
        """
        if not text:
            return None
        lowered = text.lower()
        for word in self.words:
            if word in lowered:
                return word
        return None

    def regex(self) -> str:
        """The same rule as one regular expression (used by Great Expectations checks)."""
        return "(?i)(?:" + "|".join(re.escape(w) for w in self.words) + ")"


@lru_cache(maxsize=4)
def default_matcher(path: str = str(DEFAULT_WORDS_FILE)) -> SafetyWordMatcher:
    return SafetyWordMatcher(load_words(path))
