"""RFC 9110 helpers as pure functions."""

from __future__ import annotations

import pytest

from server.web.conditional import (
    ByteRange,
    Outcome,
    RangeNotSatisfiable,
    accepts_gzip,
    evaluate,
    http_date,
    if_range_holds,
    last_modified_seconds,
    parse_range,
)

ETAG = '"abc"'
LM = 1_700_000_000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0, identity", False),
        ("br", False),
        ("*", True),
        ("*;q=0", False),
        ("*, gzip;q=0", False),
        ("x-gzip", True),
        ("identity", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accepts_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (None, 10, None),
        ("bytes=0-0", 10, ByteRange(0, 0)),
        ("bytes=2-", 10, ByteRange(2, 9)),
        ("bytes=-3", 10, ByteRange(7, 9)),
        ("bytes=-30", 10, ByteRange(0, 9)),
        ("bytes=5-100", 10, ByteRange(5, 9)),
        (" bytes = 1-2 ", 10, ByteRange(1, 2)),
        ("bytes=3-1", 10, None),
        ("bytes=0-1,3-4", 10, None),
        ("lines=1-2", 10, None),
        ("bytes=-", 10, None),
        ("bytes=a-b", 10, None),
    ],
)
def test_parse_range(header: str | None, size: int, expected: ByteRange | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=10-", 10), ("bytes=-0", 10), ("bytes=0-", 0)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_precondition_order() -> None:
    date = http_date(LM)
    assert evaluate("GET", {}, ETAG, LM) is Outcome.SEND
    assert evaluate("GET", {"If-None-Match": ETAG}, ETAG, LM) is Outcome.NOT_MODIFIED
    assert evaluate("DELETE", {"If-None-Match": ETAG}, ETAG, LM) is Outcome.PRECONDITION_FAILED
    assert evaluate("GET", {"If-Match": '"x"', "If-None-Match": ETAG}, ETAG, LM) is Outcome.PRECONDITION_FAILED
    assert evaluate("GET", {"If-Match": "W/" + ETAG}, ETAG, LM) is Outcome.PRECONDITION_FAILED  # strong compare
    assert evaluate("GET", {"If-Match": ETAG, "If-Unmodified-Since": http_date(1)}, ETAG, LM) is Outcome.SEND
    assert evaluate("GET", {"If-Modified-Since": date}, ETAG, LM) is Outcome.NOT_MODIFIED
    assert evaluate("POST", {"If-Modified-Since": date}, ETAG, LM) is Outcome.SEND


def test_if_range_and_last_modified() -> None:
    assert if_range_holds(None, ETAG, LM)
    assert if_range_holds(ETAG, ETAG, LM)
    assert not if_range_holds('"other"', ETAG, LM)
    assert not if_range_holds(ETAG, "W/" + ETAG, LM)
    assert if_range_holds(http_date(LM), ETAG, LM)
    assert not if_range_holds(http_date(LM - 1), ETAG, LM)
    assert not if_range_holds("not a date", ETAG, LM)
    assert last_modified_seconds(LM + 0.9, now=LM + 100) == LM
    assert last_modified_seconds(LM + 500, now=LM + 100) == LM + 100
