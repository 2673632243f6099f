"""Token bucket math, rate-limit header parsing and the rate gate (no server, fake clock)."""

from __future__ import annotations

import asyncio

import pytest

from em_assets.llm.rate_limiter import (
    LimitsConfig,
    RateGate,
    RateLimitInfo,
    TokenBucket,
    effective_per_minute,
    parse_duration,
    parse_ratelimit_headers,
    parse_retry_after,
)


def test_bucket_waits_for_refill_and_lets_oversized_requests_through_once_full():
    bucket = TokenBucket(rate=10.0, capacity=5.0, now=0.0, level=0.0)
    assert bucket.wait_time(1, now=0.0) == pytest.approx(0.1)
    assert bucket.wait_time(1, now=0.1) == 0.0
    bucket.take(1, now=0.1)
    assert bucket.level == pytest.approx(0.0)
    # Refill stops at capacity.
    assert bucket.wait_time(1, now=100.0) == 0.0 and bucket.level == 5.0
    # Larger than the capacity: allowed when full, leaving a debt the next request waits out.
    assert bucket.wait_time(50, now=100.0) == 0.0
    bucket.take(50, now=100.0)
    assert bucket.level == -45.0
    assert bucket.wait_time(1, now=100.0) == pytest.approx(4.6)


def test_bucket_rate_change_keeps_level_within_capacity():
    bucket = TokenBucket(rate=10.0, capacity=5.0, now=0.0)
    bucket.set_rate(2.0, 1.0, now=0.0)
    assert (bucket.rate, bucket.capacity, bucket.level) == (2.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20ms", 0.02),
        ("1s", 1.0),
        ("1.5s", 1.5),
        ("6m0s", 360.0),
        ("1h2m3s", 3723.0),
        ("0.25", 0.25),
        ("", None),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_parse_retry_after_prefers_milliseconds_and_reads_http_dates():
    assert parse_retry_after({"Retry-After": "2", "retry-after-ms": "350"}) == pytest.approx(0.35)
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert parse_retry_after({"retry-after": date}, now_epoch=1445412480.0) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": "garbage"}) is None
    assert parse_retry_after({}) is None


def test_parse_ratelimit_headers():
    info = parse_ratelimit_headers(
        {
            "x-ratelimit-limit-requests": "10000",
            "X-RateLimit-Remaining-Requests": "9999",
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": "30000000",
            "x-ratelimit-remaining-tokens": "29999000",
            "x-ratelimit-reset-tokens": "2s",
        }
    )
    assert info == RateLimitInfo(10000, 9999, 0.006, 30000000, 29999000, 2.0)
    assert parse_ratelimit_headers({}).empty


def test_effective_rate_configured_is_a_ceiling_headers_can_only_lower():
    assert effective_per_minute(6000, 10000, 6000) == 6000
    assert effective_per_minute(6000, 3000, 6000) == 3000
    assert effective_per_minute(None, 10000, 500) == 10000
    assert effective_per_minute(None, None, 500) == 500


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_gate_paces_requests_at_the_rate_with_headroom():
    clock = FakeClock()
    gate = RateGate(LimitsConfig(requests_per_minute=600, headroom=1.0, burst_seconds=0.0), clock=clock)
    assert gate.try_take(1) == 0.0  # starts with one request's budget
    wait = gate.try_take(1)
    assert wait == pytest.approx(0.1)
    clock.now += wait
    assert gate.try_take(1) == 0.0


def test_gate_pause_and_header_feedback():
    clock = FakeClock()
    gate = RateGate(LimitsConfig(requests_per_minute=None, initial_requests_per_minute=60, headroom=1.0), clock=clock)
    gate.observe(RateLimitInfo(limit_requests=6000))  # learned from headers: 100/s
    assert gate.requests_per_minute == 6000
    gate.pause(2.0)
    assert gate.try_take(1) == pytest.approx(2.0)
    clock.now = 2.0
    assert gate.try_take(1) == 0.0
    gate.observe(RateLimitInfo(remaining_requests=0, reset_requests_s=0.5))
    assert gate.try_take(1) == pytest.approx(0.5)
    gate.observe(RateLimitInfo(limit_tokens=60_000))  # a tokens/min bucket appears
    assert gate.tokens_per_minute == 60_000


def test_gate_acquire_is_fifo_and_paced():
    async def run() -> list[float]:
        gate = RateGate(LimitsConfig(requests_per_minute=60 * 50, headroom=1.0, burst_seconds=0.0))
        loop = asyncio.get_running_loop()
        start = loop.time()
        times: list[float] = []

        async def one() -> None:
            await gate.acquire(1)
            times.append(loop.time() - start)
            gate.settle()

        await asyncio.gather(*(one() for _ in range(6)))
        return times

    times = asyncio.run(run())
    assert times == sorted(times)
    assert times[-1] == pytest.approx(0.1, abs=0.05)  # 5 intervals of 20 ms


def test_gate_sends_one_probe_until_the_first_answer():
    async def run() -> list[str]:
        gate = RateGate(LimitsConfig(requests_per_minute=60_000))
        events: list[str] = []

        async def probe() -> None:
            await gate.acquire(1)
            events.append("probe sent")
            await asyncio.sleep(0.05)
            events.append("probe answered")
            gate.settle(RateLimitInfo(limit_requests=600))  # the provider reports 10/s

        async def follower() -> None:
            await asyncio.sleep(0.001)
            await gate.acquire(1)
            events.append("follower sent")
            gate.settle()

        await asyncio.gather(probe(), follower())
        assert gate.requests_per_minute == 600
        return events

    assert asyncio.run(run()) == ["probe sent", "probe answered", "follower sent"]


def test_gate_halves_on_429_without_headers_and_regrows():
    clock = FakeClock()
    gate = RateGate(LimitsConfig(requests_per_minute=6000), clock=clock)
    gate.on_rate_limited(0.5)
    gate.on_rate_limited(0.5)  # same episode: one cut
    assert gate.requests_per_minute == 3000
    clock.now = 5.0
    for _ in range(10):
        gate.settle(RateLimitInfo())
    assert 3000 < gate.requests_per_minute <= 6000
    gate.observe(RateLimitInfo(limit_requests=1200))  # once headers report a limit, they rule
    gate.on_rate_limited(0.1)
    assert gate.requests_per_minute == 1200
