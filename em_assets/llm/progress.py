"""Progress of a run: a tqdm bar on the terminal and/or periodic events for a callback (the
Dagster resource routes them into ``context.log``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tqdm.auto import tqdm


@dataclass(frozen=True)
class ProgressEvent:
    done: int
    total: int
    cache_hits: int
    failed: int
    elapsed_s: float
    rate_per_s: float  # answered network calls per second (hits are instant and excluded)
    eta_s: float | None
    message: str | None = None

    def __str__(self) -> str:
        eta = "?" if self.eta_s is None else f"{self.eta_s:.0f}s"
        text = (
            f"{self.done}/{self.total} LLM calls ({self.cache_hits} cached, {self.failed} failed), "
            f"{self.rate_per_s:.1f}/s, ETA {eta}"
        )
        return f"{text}; {self.message}" if self.message else text


def eta_seconds(remaining: int, rate_per_s: float) -> float | None:
    if remaining <= 0:
        return 0.0
    return remaining / rate_per_s if rate_per_s > 0 else None


class Progress:
    def __init__(
        self,
        total: int,
        *,
        description: str = "LLM calls",
        bar: bool = False,
        callback: Callable[[ProgressEvent], None] | None = None,
        interval_s: float = 10.0,
    ) -> None:
        self.total = total
        self.done = self.cache_hits = self.failed = 0
        self._network_done = 0
        self._callback = callback
        self._interval_s = interval_s
        self._started = time.monotonic()
        self._last_event = self._started
        self._bar = tqdm(
            total=total, desc=description, unit="call", disable=not bar, dynamic_ncols=True, mininterval=0.5
        )

    def event(self, message: str | None = None) -> ProgressEvent:
        elapsed = time.monotonic() - self._started
        rate = self._network_done / elapsed if elapsed > 0 else 0.0
        return ProgressEvent(
            self.done,
            self.total,
            self.cache_hits,
            self.failed,
            elapsed,
            rate,
            eta_seconds(self.total - self.done, rate),
            message,
        )

    def advance(self, n: int = 1, *, cache_hit: bool = False, failed: bool = False) -> None:
        self.done += n
        self.cache_hits += n if cache_hit else 0
        self.failed += n if failed else 0
        self._network_done += 0 if cache_hit else n
        self._bar.update(n)
        if self._callback is not None and time.monotonic() - self._last_event >= self._interval_s:
            self._last_event = time.monotonic()
            self._callback(self.event())

    def note(self, message: str) -> None:
        """A status line (e.g. a Batch API poll) for the callback and the bar."""
        self._bar.set_postfix_str(message, refresh=False)
        if self._callback is not None:
            self._callback(self.event(message))

    def close(self) -> None:
        self._bar.close()
        if self._callback is not None:
            self._callback(self.event("done"))
