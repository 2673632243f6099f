"""Rate limits: token buckets for requests/min and tokens/min per (endpoint, model), seeded from
config and corrected from the provider's ``x-ratelimit-*`` and ``retry-after`` headers.

Bucket math and header parsing are pure (a clock value is passed in) so they are unit-tested
without a server; :class:`RateGate` is the thin asyncio layer the engine awaits.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# Without rate-limit headers: halve the rate on a 429 episode, regrow 1 % per answered request
# once 2 s have passed without one.
_CUT_FACTOR = 0.5
_RECOVERY_FACTOR = 1.01
_RECOVERY_AFTER_S = 2.0
_PROBE_TIMEOUT_S = 30.0
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class LimitsConfig:
    """Concurrency and rate limits. ``None`` rates mean "unknown": start at the initial value
    and adopt whatever the provider's headers report. A configured rate is an upper bound the
    headers can lower but never raise (e.g. to share a quota with another job)."""

    max_in_flight: int = 32
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    initial_requests_per_minute: float = 500.0
    # Burst allowance in seconds of rate; small, because providers enforce per-minute limits
    # over much shorter windows.
    burst_seconds: float = 0.05
    # Aim slightly under the limit so that arrival jitter does not trip a 429.
    headroom: float = 0.95

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        if not 0 < self.headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")


class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``capacity`` banked.

    A request larger than the capacity is let through once the bucket is full (it could never
    fit otherwise), leaving the level negative: later requests wait for the debt to refill.
    """

    def __init__(self, rate: float, capacity: float, now: float, level: float | None = None) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate = rate
        self.capacity = capacity
        self.level = capacity if level is None else level
        self.updated = now

    def _refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_time(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` can be taken (0 when it can be taken now)."""
        self._refill(now)
        needed = min(amount, self.capacity)
        if self.level >= needed:
            return 0.0
        return (needed - self.level) / self.rate

    def take(self, amount: float, now: float) -> None:
        self._refill(now)
        self.level -= amount

    def set_rate(self, rate: float, capacity: float, now: float) -> None:
        self._refill(now)
        self.rate, self.capacity = rate, capacity
        self.level = min(self.level, capacity)


def parse_duration(text: str | None) -> float | None:
    """OpenAI's reset durations: "20ms", "1s", "1.5s", "6m0s", "1h2m3s"; plain numbers are seconds."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        return None
    return sum(float(value) * _UNIT_SECONDS[unit] for value, unit in parts)


def parse_retry_after(headers: Mapping[str, str] | None, now_epoch: float | None = None) -> float | None:
    """Seconds to wait per ``retry-after-ms`` (preferred, finer) or ``retry-after`` (seconds or
    an HTTP date); None when absent or unreadable."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now_epoch = time.time() if now_epoch is None else now_epoch
    return max(0.0, when.timestamp() - now_epoch)


@dataclass(frozen=True)
class RateLimitInfo:
    """The ``x-ratelimit-*`` headers of one response (per-minute limits, as OpenAI reports)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests_s: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens_s: float | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in vars(self).values())


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


def parse_ratelimit_headers(headers: Mapping[str, str] | None) -> RateLimitInfo:
    if not headers:
        return RateLimitInfo()
    lowered = {k.lower(): v for k, v in headers.items()}
    return RateLimitInfo(
        limit_requests=_int_header(lowered, "x-ratelimit-limit-requests"),
        remaining_requests=_int_header(lowered, "x-ratelimit-remaining-requests"),
        reset_requests_s=parse_duration(lowered.get("x-ratelimit-reset-requests")),
        limit_tokens=_int_header(lowered, "x-ratelimit-limit-tokens"),
        remaining_tokens=_int_header(lowered, "x-ratelimit-remaining-tokens"),
        reset_tokens_s=parse_duration(lowered.get("x-ratelimit-reset-tokens")),
    )


def effective_per_minute(configured: float | None, reported: int | None, current: float | None) -> float | None:
    """The rate to use: a configured value is a ceiling the provider may lower; with none
    configured the provider's report wins; with neither, keep the current rate."""
    if reported is not None and reported > 0:
        return min(configured, float(reported)) if configured is not None else float(reported)
    return configured if configured is not None else current


class RateGate:
    """Admission for one (endpoint, model): requests/min and tokens/min buckets plus a pause
    (after a 429 or an exhausted ``remaining``). Waiters queue FIFO behind one lock, so a
    single coroutine sleeps on the buckets at a time and no caller holds an in-flight slot
    while it waits here."""

    def __init__(self, limits: LimitsConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        now = clock()
        self.requests_per_minute = limits.requests_per_minute or limits.initial_requests_per_minute
        self.tokens_per_minute = limits.tokens_per_minute
        # Start nearly empty: a full bucket's burst on top of a full window trips 429s.
        self._requests = TokenBucket(*self._shape(self.requests_per_minute), now, level=1.0)
        self._tokens = TokenBucket(*self._shape(self.tokens_per_minute), now) if self.tokens_per_minute else None
        self._paused_until = 0.0
        self._last_cut = -math.inf
        self._limit_reported = False
        # Until the first response tells us the provider's limits, one request goes out alone
        # (slow start): the configured or initial rate may be far above the real one.
        self._calibrated = False
        self._probe_out = False
        self._probe_done: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _shape(self, per_minute: float) -> tuple[float, float]:
        rate = per_minute / 60.0 * self._limits.headroom
        return rate, max(1.0, rate * self._limits.burst_seconds)

    def wait_time(self, tokens: int, now: float) -> float:
        waits = [self._paused_until - now, self._requests.wait_time(1, now)]
        if self._tokens is not None:
            waits.append(self._tokens.wait_time(tokens, now))
        return max(0.0, *waits)

    def try_take(self, tokens: int) -> float:
        """Take one request's budget now and return 0, or return how long to wait."""
        now = self._clock()
        wait = self.wait_time(tokens, now)
        if wait <= 0:
            self._requests.take(1, now)
            if self._tokens is not None:
                self._tokens.take(tokens, now)
        return wait

    def _loop_lock(self) -> asyncio.Lock:
        # The gate's learned limits outlive one event loop (each sync engine call runs its
        # own); asyncio primitives must not.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
            self._probe_done, self._probe_out = asyncio.Event(), False
        return self._lock

    async def acquire(self, tokens: int) -> None:
        """Wait for budget for one request; pair every acquire with :meth:`settle`."""
        async with self._loop_lock():
            if not self._calibrated:
                assert self._probe_done is not None
                if self._probe_out:
                    try:  # bounded: a probe that never settles (cancelled) must not block all
                        await asyncio.wait_for(self._probe_done.wait(), _PROBE_TIMEOUT_S)
                    except TimeoutError:
                        self._calibrated = True
                else:
                    self._probe_out = True
            while (wait := self.try_take(tokens)) > 0:
                await asyncio.sleep(wait)

    def settle(self, info: RateLimitInfo | None = None) -> None:
        """A request admitted by :meth:`acquire` ended (answer or error), with its headers."""
        if info is not None:
            self.observe(info)
            if not self._limit_reported and self._clock() - self._last_cut >= _RECOVERY_AFTER_S:
                self._recover()
        if not self._calibrated:
            self._calibrated = True
            if self._probe_done is not None:
                self._probe_done.set()

    def on_rate_limited(self, retry_after_s: float | None) -> None:
        """A 429: everyone waits. Where no header reports the limit, the rate is also halved,
        at most once a second (one burst of 429s is one signal), and regrows slowly while no
        429 comes (see :meth:`settle`): additive-increase/multiplicative-decrease in spirit."""
        self.pause(retry_after_s if retry_after_s is not None else 1.0)
        now = self._clock()
        if not self._limit_reported and now - self._last_cut >= 1.0:
            self._last_cut = now
            self._set_requests_per_minute(max(1.0, self.requests_per_minute * _CUT_FACTOR), now)

    def _recover(self) -> None:
        ceiling = self._limits.requests_per_minute or self._limits.initial_requests_per_minute
        if self.requests_per_minute < ceiling:
            self._set_requests_per_minute(min(ceiling, self.requests_per_minute * _RECOVERY_FACTOR), self._clock())

    def _set_requests_per_minute(self, rpm: float, now: float) -> None:
        self.requests_per_minute = rpm
        self._requests.set_rate(*self._shape(rpm), now)

    def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def observe(self, info: RateLimitInfo) -> None:
        """Adopt the provider's view of the limits from one response's headers."""
        if info.empty:
            return
        now = self._clock()
        self._limit_reported = self._limit_reported or info.limit_requests is not None
        rpm = effective_per_minute(self._limits.requests_per_minute, info.limit_requests, self.requests_per_minute)
        if rpm is not None and not math.isclose(rpm, self.requests_per_minute) and self._limit_reported:
            self._set_requests_per_minute(rpm, now)
        tpm = effective_per_minute(self._limits.tokens_per_minute, info.limit_tokens, self.tokens_per_minute)
        if tpm is not None and tpm != self.tokens_per_minute:
            self.tokens_per_minute = tpm
            if self._tokens is None:
                self._tokens = TokenBucket(*self._shape(tpm), now)
            else:
                self._tokens.set_rate(*self._shape(tpm), now)
        if info.remaining_requests == 0 and info.reset_requests_s:
            self.pause(info.reset_requests_s)
        if info.remaining_tokens == 0 and info.reset_tokens_s:
            self.pause(info.reset_tokens_s)
