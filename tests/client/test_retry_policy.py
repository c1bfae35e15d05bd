"""`Retry`'s pure logic: validation, `plan`, the backoff, and Retry-After parsing.

No sockets, no clock: `plan` takes the time left, the wall-clock time and the random number
as arguments, so every rule is checked here directly, and with hypothesis.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import trioclient
from trioclient import Retry
from trioclient._retry import build_retry, parse_retry_after

NOW = 1_700_000_000.0  # a fixed wall-clock time for HTTP-dates

CONNECT = trioclient.ConnectError("refused")
READ = trioclient.ReadError("reset")


# --- construction ------------------------------------------------------------------------


def test_defaults() -> None:
    retry = Retry()
    assert (retry.total, retry.connect, retry.read, retry.status) == (3, None, None, None)
    assert retry.allowed_methods == frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PUT", "TRACE"})
    assert retry.status_forcelist == frozenset({429, 502, 503, 504})
    assert retry.retries_made == 0
    assert repr(retry) == "Retry(total=3, connect=None, read=None, status=None)"


def test_immutable_and_hashable() -> None:
    retry = Retry(total=2)
    with pytest.raises(AttributeError, match="immutable"):
        retry.total = 5  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del retry.total
    assert retry == Retry(total=2)
    assert hash(retry) == hash(Retry(total=2))
    assert retry != Retry(total=3)
    assert retry != "Retry(total=2)"


def test_allowed_methods_are_uppercased_and_none_means_any() -> None:
    assert Retry(allowed_methods=["post", "Get"]).allowed_methods == frozenset({"POST", "GET"})
    assert Retry(allowed_methods=None).is_method_allowed("PATCH")
    assert not Retry().is_method_allowed("POST")
    assert Retry().is_method_allowed("get")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"total": None}, TypeError, "total must be an int >= 0, not NoneType"),
        ({"total": True}, TypeError, "total must be an int"),
        ({"total": -1}, ValueError, "total must be >= 0"),
        ({"connect": 1.5}, TypeError, "connect must be an int >= 0 or None"),
        ({"read": -2}, ValueError, "read must be >= 0"),
        ({"backoff_factor": "1"}, TypeError, "backoff_factor must be a number"),
        ({"backoff_max": math.nan}, ValueError, "backoff_max must be a finite"),
        ({"backoff_jitter": -1}, ValueError, "backoff_jitter must be a finite"),
        ({"retry_after_max": math.inf}, ValueError, "retry_after_max must be a finite"),
        ({"allowed_methods": "GET"}, TypeError, "allowed_methods must be a collection"),
        ({"allowed_methods": [1]}, TypeError, "must hold method names"),
        ({"status_forcelist": 503}, TypeError, "status_forcelist must be a collection"),
        ({"status_forcelist": [600]}, ValueError, "holds 600"),
        ({"status_forcelist": [True]}, ValueError, "holds True"),
        ({"respect_retry_after": 1}, TypeError, "respect_retry_after must be a bool"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, object], error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        Retry(**kwargs)  # type: ignore[arg-type]


def test_build_retry() -> None:
    assert build_retry(None) is None
    assert build_retry(0) is None
    assert build_retry(4) == Retry(total=4)
    policy = Retry(total=1)
    assert build_retry(policy) is policy
    message = r"retries must be None, an int >= 0 or a trioclient\.Retry"
    with pytest.raises(TypeError, match=message):
        build_retry(True)
    with pytest.raises(TypeError, match="not str"):
        build_retry("3")
    with pytest.raises(ValueError, match="not -1"):
        build_retry(-1)


# --- plan: what is retried ---------------------------------------------------------------


def plan(retry: Retry, method: str = "GET", **kwargs: object) -> trioclient.RetryDecision:
    kwargs.setdefault("replayable", True)
    return retry.plan(method, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "error",
    [trioclient.ConnectError("x"), trioclient.ConnectTimeout("x")],
)
def test_connect_errors_are_retried_for_any_method(error: Exception) -> None:
    decision = plan(Retry(backoff_jitter=0), "POST", error=error)
    assert decision.kind == "connect"
    assert decision.retry is not None
    assert decision.retry.total == 2
    assert decision.retry.retries_made == 1
    assert decision.delay == 0.5


@pytest.mark.parametrize(
    "error",
    [
        trioclient.ReadError("x"),
        trioclient.ReadTimeout("x"),
        trioclient.WriteError("x"),
        trioclient.WriteTimeout("x"),
        trioclient.RemoteProtocolError("x"),
    ],
)
def test_read_errors_are_retried_for_allowed_methods_only(error: Exception) -> None:
    assert plan(Retry(), "GET", error=error).retry is not None
    refused = plan(Retry(), "POST", error=error)
    assert refused.retry is None
    assert refused.kind == "read"
    assert "POST is not in allowed_methods" in refused.reason
    assert plan(Retry(allowed_methods={"POST"}), "POST", error=error).retry is not None


@pytest.mark.parametrize(
    "error",
    [
        trioclient.PoolTimeout("x"),
        trioclient.DecodingError("x"),
        trioclient.ResponseTooLarge("x", limit=1, size=2, declared=True),
        trioclient.TooManyRedirects("x"),
        trioclient.LocalProtocolError("x"),
        trioclient.UnsupportedProtocol("x"),
        trioclient.ProxyError("x"),
        ValueError("x"),
    ],
)
def test_other_errors_are_never_retried(error: Exception) -> None:
    decision = plan(Retry(allowed_methods=None), error=error)
    assert decision == trioclient.RetryDecision(None, None, 0.0, "")


def test_a_stream_body_is_never_retried() -> None:
    decision = plan(Retry(), error=CONNECT, replayable=False)
    assert decision.retry is None
    assert "stream" in decision.reason


def test_statuses() -> None:
    retry = Retry(backoff_jitter=0)
    assert plan(retry, status_code=200).kind is None
    assert retry.kind_of() is None  # neither an error nor a status
    assert plan(retry, status_code=500).kind is None
    assert plan(retry, status_code=503).kind == "status"
    assert plan(Retry(status_forcelist=[500]), status_code=500).kind == "status"
    # 413, 429 and 503 are retried when they carry a Retry-After, listed or not.
    bare = Retry(status_forcelist=())
    assert plan(bare, status_code=413).kind is None
    assert plan(bare, status_code=413, retry_after="2").delay == 2.0
    assert plan(bare, status_code=418, retry_after="2").kind is None
    ignoring = Retry(status_forcelist=(), respect_retry_after=False)
    assert plan(ignoring, status_code=429, retry_after="2").kind is None
    assert plan(retry, "POST", status_code=503).retry is None


def test_counts_run_out() -> None:
    retry = Retry(total=5, connect=1, backoff_jitter=0)
    first = plan(retry, error=CONNECT).retry
    assert first is not None
    assert (first.total, first.connect) == (4, 0)
    second = plan(first, error=CONNECT)
    assert second.retry is None
    assert second.reason == "retries exhausted (the connect count ran out after 1 retry)"
    assert plan(first, error=READ).retry is not None  # read has its own count
    zero = plan(Retry(total=0), error=CONNECT)
    assert zero.retry is None
    assert zero.reason == "retries exhausted (the total count ran out after 0 retries)"


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    retry: Retry | None = Retry(total=10, backoff_factor=1.0, backoff_jitter=0.5, backoff_max=6.0)
    delays = []
    for _ in range(5):
        assert retry is not None
        decision = plan(retry, error=CONNECT, random=0.5)
        delays.append(decision.delay)
        retry = decision.retry
    assert delays == [1.25, 2.25, 4.25, 6.0, 6.0]
    assert Retry().backoff(0.99) == 0.0  # no retry made yet: no wait


def test_retry_after_is_honoured_or_refused() -> None:
    retry = Retry(retry_after_max=60)
    assert plan(retry, status_code=503, retry_after="7").delay == 7.0
    date = format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc), usegmt=True)
    assert plan(retry, status_code=503, retry_after=date, now=NOW).delay == 30.0
    too_long = plan(retry, status_code=503, retry_after="3600")
    assert too_long.retry is None
    assert too_long.reason == "Retry-After asks for 3600 s, more than retry_after_max=60 s"
    # Unparseable: the backoff instead.
    assert plan(Retry(backoff_jitter=0), status_code=503, retry_after="soon").delay == 0.5


def test_the_total_deadline_bounds_the_wait() -> None:
    decision = plan(Retry(), status_code=503, retry_after="10", remaining=9.5)
    assert decision.retry is None
    assert decision.reason == "waiting 10 s would pass the total timeout (9.5 s left)"
    assert plan(Retry(), status_code=503, retry_after="10", remaining=10.5).retry is not None


# --- plan: properties --------------------------------------------------------------------

_outcomes = st.one_of(
    st.sampled_from([CONNECT, READ, trioclient.ConnectTimeout("t"), trioclient.PoolTimeout("p")]),
    st.integers(100, 599),
)


@given(
    total=st.integers(0, 6),
    connect=st.none() | st.integers(0, 6),
    read=st.none() | st.integers(0, 6),
    status=st.none() | st.integers(0, 6),
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH"]),
    outcomes=st.lists(_outcomes, min_size=1, max_size=20),
    randoms=st.lists(st.floats(0, 1, exclude_max=True), min_size=20, max_size=20),
    factor=st.floats(0, 10),
    jitter=st.floats(0, 10),
    cap=st.floats(0, 100),
)
def test_plan_is_bounded_and_obeys_the_rules(
    total: int,
    connect: int | None,
    read: int | None,
    status: int | None,
    method: str,
    outcomes: list[object],
    randoms: list[float],
    factor: float,
    jitter: float,
    cap: float,
) -> None:
    """However the outcomes fall: at most `total` retries (and each kind's own count), no
    read or status retry of a method that is not allowed, every wait within the cap."""
    retry: Retry | None = Retry(
        total,
        connect=connect,
        read=read,
        status=status,
        backoff_factor=factor,
        backoff_jitter=jitter,
        backoff_max=cap,
    )
    made = {"connect": 0, "read": 0, "status": 0}
    for outcome, random in zip(outcomes, randoms, strict=False):
        assert retry is not None
        if isinstance(outcome, int):
            decision = retry.plan(method, replayable=True, status_code=outcome, random=random)
        else:
            decision = retry.plan(method, replayable=True, error=outcome, random=random)
        if decision.retry is None:
            break
        assert decision.kind is not None
        made[decision.kind] += 1
        assert 0 <= decision.delay <= cap
        if decision.kind != "connect":
            assert method in ("GET", "PUT")
        retry = decision.retry
        assert retry.retries_made == sum(made.values())
    assert sum(made.values()) <= total
    for kind, limit in (("connect", connect), ("read", read), ("status", status)):
        assert limit is None or made[kind] <= limit


# --- Retry-After ---------------------------------------------------------------------------


@given(st.integers(0, 10**15 - 1), st.integers(0, 5))
def test_delay_seconds_round_trip(seconds: int, zeros: int) -> None:
    assert parse_retry_after(f" {'0' * zeros}{seconds}\t", NOW) == float(seconds)


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 1, 1)))
def test_http_dates_round_trip(moment: datetime) -> None:
    moment = moment.replace(microsecond=0, tzinfo=timezone.utc)
    header = format_datetime(moment, usegmt=True)  # IMF-fixdate
    expected = max(moment.timestamp() - NOW, 0.0)
    assert parse_retry_after(header, NOW) == expected


def test_the_obsolete_date_formats_and_the_past() -> None:
    moment = datetime.fromtimestamp(NOW, timezone.utc) + timedelta(seconds=90)
    for text in (
        moment.strftime("%A, %d-%b-%y %H:%M:%S GMT"),  # RFC 850
        moment.strftime("%a %b %d %H:%M:%S %Y"),  # asctime
        moment.strftime("%a, %d %b %Y %H:%M:%S -0000"),
    ):
        assert parse_retry_after(text, NOW) == 90.0, text
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("9" * 40, NOW) == math.inf


@pytest.mark.parametrize(
    "text", ["", " ", "-1", "1.5", "10s", "soon", "٣", "Thu, 99 Foo 2024 99:99:99 GMT", "\x00"]
)
def test_garbage_is_none(text: str) -> None:
    assert parse_retry_after(text, NOW) is None


@given(st.text())
def test_any_text_parses_or_is_none(text: str) -> None:
    result = parse_retry_after(text, NOW)
    assert result is None or result >= 0
