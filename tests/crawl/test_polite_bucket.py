"""TokenBucket: its invariant as properties (pure bookkeeping, no clock), then on
MockClock through `acquire`."""

from __future__ import annotations

import math

import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

from trioclient.crawl import TokenBucket

arrivals = st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=60)
rates = st.floats(min_value=0.05, max_value=50)
bursts = st.integers(min_value=1, max_value=10)


def grants(bucket: TokenBucket, times: list[float]) -> list[float]:
    return [bucket.reserve(now) for now in sorted(times)]


@given(arrivals, rates, bursts)
def test_never_more_than_burst_plus_rate_times_t_in_any_window(
    times: list[float], rate: float, burst: int
) -> None:
    granted = sorted(grants(TokenBucket(1 / rate, burst), times))
    for i in range(len(granted)):
        for j in range(i, len(granted)):
            window = granted[j] - granted[i]
            assert j - i + 1 <= burst + rate * window + 1e-6


@given(arrivals, rates, bursts)
def test_grants_are_never_early_and_in_arrival_order(
    times: list[float], rate: float, burst: int
) -> None:
    ordered = sorted(times)
    granted = grants(TokenBucket(1 / rate, burst), ordered)
    assert all(g >= t for g, t in zip(granted, ordered, strict=True))
    assert granted == sorted(granted)


@given(arrivals, rates, bursts)
def test_an_idle_bucket_grants_a_full_burst_at_once(
    times: list[float], rate: float, burst: int
) -> None:
    bucket = TokenBucket(1 / rate, burst)
    grants(bucket, times)
    later = max(times, default=0) + 1000 + burst / rate
    assert [bucket.reserve(later) for _ in range(burst)] == [later] * burst


@given(arrivals)
def test_no_interval_means_no_limit(times: list[float]) -> None:
    assert grants(TokenBucket(0.0, 1), times) == sorted(times)


def test_a_longer_interval_applies_from_the_next_grant() -> None:
    bucket = TokenBucket(1.0, 1)
    assert bucket.reserve(0) == 0
    bucket.interval = 5.0  # a Crawl-delay learnt
    assert bucket.reserve(0) == 1  # booked with the old interval
    assert bucket.reserve(0) == 6
    assert math.isinf(TokenBucket(1.0)._tat)


async def test_acquire_sleeps_until_the_grant(autojump_clock: trio.testing.MockClock) -> None:
    bucket = TokenBucket(0.25, 2)
    start = trio.current_time()
    seen = []
    for _ in range(5):
        await bucket.acquire()
        seen.append(trio.current_time() - start)
    assert seen == [0, 0, 0.25, 0.5, 0.75]


async def test_acquire_is_a_checkpoint_when_free() -> None:
    with trio.testing.assert_checkpoints():
        await TokenBucket(0.0).acquire()


media = st.sampled_from(["text/html", "application/xhtml+xml", "text/plain", "image/png", "a/b"])
params = st.sampled_from(["", "; charset=utf-8", ";q=1", " ; boundary=x"])


@given(media, params, st.booleans())
def test_content_types_ignore_parameters_and_case(kind: str, param: str, upper: bool) -> None:
    from trioclient.crawl import FetchLimits

    limits = FetchLimits()
    header = (kind.upper() if upper else kind) + param
    assert limits.allows(header) == (kind in (limits.content_types or ()))
    assert FetchLimits(content_types=None).allows(header)
    assert not limits.allows(None)
    assert not limits.allows("")
