"""The analytics API's parameters: every bad input the contract lists is refused with a 400 that
names the parameter, another tenant without the admin role is a 403, and defaults are the contract's."""

from __future__ import annotations

import pytest

from gateway.analytics_params import (
    Scope,
    parse_choice,
    parse_days,
    parse_limit,
    parse_scope,
    parse_step,
    parse_time,
)
from gateway.auth import Identity
from gateway.errors import ForbiddenError, InvalidParameterError

NOW_MS = 1_795_000_000_000
USER = Identity("acme", "alice")
ADMIN = Identity("ops", "root", admin=True)
HOUR = Scope(NOW_MS - 3_600_000, NOW_MS, "acme", None)


@pytest.mark.parametrize(
    ("raw", "ms"),
    [("1795000000", 1_795_000_000_000), ("1795000000.25", 1_795_000_000_250), (" 0 ", 0),
     ("2026-11-18T11:06:40Z", 1_795_000_000_000), ("2026-11-18T11:06:40.5z", 1_795_000_000_500),
     ("2026-11-18T12:06:40+01:00", 1_795_000_000_000), ("2026-11-18T11:06:40", 1_795_000_000_000),
     ("2026-11-18", 1_794_960_000_000)],
)  # fmt: skip
def test_times_are_epoch_seconds_or_iso_8601_in_utc(raw: str, ms: int) -> None:
    assert parse_time(raw, "from") == ms


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-01", "2026-11-18T25:00", "1e400", "nan", "-5", "", "12:00",
                                 "1969-12-31T23:59:59Z", "99999999999999"])  # fmt: skip
def test_malformed_times_are_refused_naming_the_parameter(raw: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_time(raw, "to")
    assert caught.value.status == 400 and caught.value.param == "to" and "to=" in caught.value.message


def test_the_default_range_is_the_last_hour_of_the_callers_tenant() -> None:
    assert parse_scope(USER, {}, NOW_MS) == HOUR
    assert parse_scope(USER, {"to": "1795000000", "model": "gpt"}, NOW_MS + 5) == Scope(
        NOW_MS - 3_600_000, NOW_MS, "acme", "gpt")  # fmt: skip


@pytest.mark.parametrize(
    ("query", "param", "words"),
    [({"from": "1795000000", "to": "1795000000"}, "from", "before"),
     ({"from": "1795000060", "to": "1795000000"}, "from", "before"),
     ({"from": "2025-01-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from", "at most 400 days"),
     ({"from": "last week"}, "from", "ISO 8601"),
     ({"to": "2026-02-30"}, "to", "ISO 8601"),
     ({"tenant": "x" * 201}, "tenant", "at most 200"),
     ({"model": "a\x00b"}, "model", "no NUL")],
)  # fmt: skip
def test_bad_ranges_and_names_are_400(query: dict[str, str], param: str, words: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_scope(ADMIN, query, NOW_MS)
    assert caught.value.param == param and words in caught.value.message


def test_a_range_of_exactly_400_days_is_allowed() -> None:
    scope = parse_scope(USER, {"from": str(1_795_000_000 - 400 * 86400), "to": "1795000000"}, NOW_MS)
    assert scope.range_s == 400 * 86400


@pytest.mark.parametrize(
    ("identity", "tenant", "scoped"),
    [(USER, None, "acme"), (USER, "acme", "acme"), (ADMIN, None, None), (ADMIN, "acme", "acme"), (ADMIN, "ops", "ops")],
)  # fmt: skip
def test_a_token_reads_its_tenant_and_an_admin_any(identity: Identity, tenant: str | None, scoped: str | None) -> None:
    assert parse_scope(identity, {"tenant": tenant} if tenant else {}, NOW_MS).tenant == scoped


def test_another_tenant_without_the_admin_role_is_403() -> None:
    with pytest.raises(ForbiddenError) as caught:
        parse_scope(USER, {"tenant": "globex"}, NOW_MS)
    assert caught.value.status == 403 and "admin role" in caught.value.message


@pytest.mark.parametrize(
    ("range_s", "step"),
    [(3600, 60), (6 * 3600, 60), (6 * 3600 + 60, 120), (86400, 300), (7 * 86400, 1800), (30 * 86400, 7200),
     (400 * 86400, 86400)],
)  # fmt: skip
def test_the_default_step_draws_at_most_360_points(range_s: int, step: int) -> None:
    scope = Scope(NOW_MS - range_s * 1000, NOW_MS, None, None)
    assert parse_step({}, scope) == step


@pytest.mark.parametrize(
    ("step", "range_s", "words"),
    [("30", 3600, "whole minutes"), ("0", 3600, "whole minutes"), ("90", 3600, "whole minutes"),
     ("60", 86400 + 60, "too small for the range: 1441 points, at most 1440; use a step of at least 120 s"),
     ("abc", 3600, "not a whole number"), ("-60", 3600, "not a whole number"), ("60.0", 3600, "not a whole number")],
)  # fmt: skip
def test_bad_steps_are_400(step: str, range_s: int, words: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_step({"step": step}, Scope(NOW_MS - range_s * 1000, NOW_MS, None, None))
    assert caught.value.param == "step" and words in caught.value.message


def test_1440_points_is_the_most_a_step_may_draw() -> None:
    assert parse_step({"step": "60"}, Scope(NOW_MS - 86_400_000, NOW_MS, None, None)) == 60


@pytest.mark.parametrize(("raw", "limit"), [(None, 10), ("", 10), ("1", 1), ("100", 100)])
def test_limits_within_1_to_100(raw: str | None, limit: int) -> None:
    assert parse_limit({} if raw is None else {"limit": raw}) == limit


@pytest.mark.parametrize("raw", ["0", "101", "-1", "ten", "5.5"])
def test_limits_out_of_range_are_400(raw: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_limit({"limit": raw})
    assert caught.value.param == "limit"


def test_unknown_choices_are_400_listing_the_known_ones() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_choice("dau", "figure", ("messages", "cost"))
    assert caught.value.message == "unknown figure 'dau'; one of messages, cost"
    assert parse_choice(None, "by", ("messages", "cost"), default="messages") == "messages"


@pytest.mark.parametrize(("raw", "days"), [(None, (1, 7, 30)), ("7,1", (1, 7)), ("1, 1 ,2", (1, 2)), ("365", (365,))])
def test_retention_days(raw: str | None, days: tuple[int, ...]) -> None:
    assert parse_days({} if raw is None else {"days": raw}) == days


@pytest.mark.parametrize("raw", ["0", "366", "1,,7", "a", "1,2,3,4,5,6,7,8,9,10,11", "-1"])
def test_bad_retention_days_are_400(raw: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        parse_days({"days": raw})
    assert caught.value.param == "days"
