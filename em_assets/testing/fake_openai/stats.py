"""What the fake server counted: the public :class:`FakeServerStats` snapshot and the counters
behind it, which the server's thread writes and the test's thread reads under one lock."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass
class FakeServerStats:
    requests_by_endpoint: dict[str, int]  # "POST /v1/chat/completions" -> count (all outcomes)
    chat_answers: dict[str, int]  # chat_request_hash(body) -> successful answers (sync + batch)
    faults: dict[str, int]  # fault kind -> injected count
    rate_limited: int  # 429s sent
    unanswered_paid: int = 0  # chat answers computed, then dropped by a slow_answer fault

    def requests(self, endpoint: str) -> int:
        return self.requests_by_endpoint.get(endpoint, 0)

    @property
    def chat_requests(self) -> int:
        return self.requests("POST /v1/chat/completions")

    @property
    def total_requests(self) -> int:
        return sum(self.requests_by_endpoint.values())

    @property
    def duplicate_answers(self) -> dict[str, int]:
        return {h: n for h, n in self.chat_answers.items() if n > 1}


class Counters:
    """The live counts. ``lock`` also guards the stored objects the test's thread may list."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests_by_endpoint: Counter[str] = Counter()
        self.chat_answers: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.rate_limited = 0
        self.unanswered_paid = 0

    def count_request(self, endpoint: str) -> None:
        with self.lock:
            self.requests_by_endpoint[endpoint] += 1

    def count_answer(self, chat_hash: str) -> None:
        with self.lock:
            self.chat_answers[chat_hash] += 1

    def count_fault(self, kind: str) -> None:
        with self.lock:
            self.faults[kind] += 1

    def count_rate_limited(self) -> None:
        with self.lock:
            self.rate_limited += 1

    def count_unanswered_paid(self) -> None:
        with self.lock:
            self.unanswered_paid += 1

    def snapshot(self) -> FakeServerStats:
        with self.lock:
            return FakeServerStats(
                requests_by_endpoint=dict(self.requests_by_endpoint),
                chat_answers=dict(self.chat_answers),
                faults=dict(self.faults),
                rate_limited=self.rate_limited,
                unanswered_paid=self.unanswered_paid,
            )

    def reset(self) -> None:
        with self.lock:
            self.requests_by_endpoint.clear()
            self.chat_answers.clear()
            self.faults.clear()
            self.rate_limited = 0
            self.unanswered_paid = 0
