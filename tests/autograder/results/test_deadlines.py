"""Due dates read in a timezone (daylight saving time included) and the late policy's penalty."""

import datetime as dt

import pytest

from autograder.results.deadlines import (
    DeadlineError,
    LatePolicy,
    PenaltyKind,
    Per,
    human_duration,
    parse_duration,
    parse_time,
    timestamp_text,
    zone,
)

BERLIN, NEW_YORK = zone("Europe/Berlin"), zone("America/New_York")


def utc(*args):
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_local_times_follow_daylight_saving_time():
    """The same wall-clock time is an hour apart in UTC on either side of a DST change."""
    assert parse_time("2026-03-28 23:59", BERLIN) == utc(2026, 3, 28, 22, 59)   # CET
    assert parse_time("2026-03-29 23:59", BERLIN) == utc(2026, 3, 29, 21, 59)   # CEST
    assert parse_time("2026-03-07 23:59", NEW_YORK) == utc(2026, 3, 8, 4, 59)    # EST
    assert parse_time("2026-03-09 23:59", NEW_YORK) == utc(2026, 3, 10, 3, 59)   # EDT


def test_an_explicit_offset_wins_over_the_timezone():
    """A time with an offset or Z means that instant, whatever the course's timezone."""
    assert parse_time("2026-10-20 23:59 -04:00", BERLIN) == utc(2026, 10, 21, 3, 59)
    assert parse_time("2026-10-20T23:59:30Z", BERLIN) == utc(2026, 10, 20, 23, 59, 30)


def test_a_skipped_local_time_is_refused():
    """02:30 on the night clocks go forward does not exist; it is refused, not guessed."""
    with pytest.raises(DeadlineError, match="does not exist in Europe/Berlin"):
        parse_time("2026-03-29 02:30", BERLIN)


def test_a_repeated_local_time_is_refused_with_both_readings():
    """01:30 on the night New York's clocks go back happens twice; the message names both
    instants and how to choose one."""
    with pytest.raises(DeadlineError, match="happens twice") as err:
        parse_time("2026-11-01 01:30", NEW_YORK)
    assert "05:30 or 06:30 UTC" in str(err.value) and "-0400" in str(err.value)


@pytest.mark.parametrize("text", ["2026-10-20", "tomorrow", "2026-13-01 10:00", "20/10/2026 10:00"])
def test_a_date_without_a_time_or_a_malformed_one_is_refused(text):
    """Only a full date and time is accepted (a date alone: start or end of the day?)."""
    with pytest.raises(DeadlineError):
        parse_time(text, BERLIN)


def test_an_unknown_timezone_names_the_problem():
    """A timezone that is not an IANA name is a clear error."""
    with pytest.raises(DeadlineError, match="unknown timezone 'Mars/Olympus'"):
        zone("Mars/Olympus")


def test_durations_and_their_human_form():
    """Extensions are written as 2d, 36h, 90min or combinations; lateness is shown in d/h/min."""
    assert parse_duration("2d") == dt.timedelta(days=2)
    assert parse_duration("1d 12h") == dt.timedelta(hours=36)
    assert parse_duration("90min") == dt.timedelta(minutes=90)
    for bad in ("", "0h", "two days", "5x"):
        with pytest.raises(DeadlineError):
            parse_duration(bad)
    assert human_duration(93784) == "1 d 2 h 3 min" and human_duration(42) == "42 s"


def test_timestamp_text_is_nbgrader_s_format():
    """timestamp.txt gets the text nbgrader writes (UTC, microseconds, zone name)."""
    assert timestamp_text(utc(2026, 10, 21, 1, 16, 27)) == "2026-10-21 01:16:27.000000 UTC"


def test_none_policy_takes_nothing_like_nbgrader():
    """'none' gives no penalty (None, as nbgrader's plugin returns)."""
    assert LatePolicy().penalty(8.0, 10 * 86400) is None


def test_zero_policy_takes_the_whole_score():
    """'zero' takes the score, and nothing within the grace period."""
    policy = LatePolicy(PenaltyKind.ZERO, grace_seconds=600)
    assert policy.penalty(8.0, 601) == 8.0
    assert policy.penalty(8.0, 599) == 0.0
    assert policy.penalty(8.0, 0) is None


@pytest.mark.parametrize("seconds, expected", [(1, 1.0), (86400, 1.0), (86401, 2.0),
                                               (3 * 86400 + 1, 3.0), (30 * 86400, 3.0)])
def test_percent_per_started_day_is_capped(seconds, expected):
    """10% of the score per started day, at most 30%: a second late is a day."""
    policy = LatePolicy(PenaltyKind.PERCENT, percent=10, per=Per.DAY, cap=30)
    assert policy.penalty(10.0, seconds) == pytest.approx(expected)


def test_percent_per_hour():
    """Per hour counts started hours; the penalty never exceeds the score."""
    policy = LatePolicy(PenaltyKind.PERCENT, percent=25, per=Per.HOUR)
    assert policy.penalty(4.0, 3601) == pytest.approx(2.0)
    assert policy.penalty(4.0, 100 * 3600) == pytest.approx(4.0)


@pytest.mark.parametrize("data, why", [
    ({"kind": "half"}, "kind must be one of"), ({"kind": "percent"}, "needs a percent"),
    ({"kind": "percent", "percent": 150}, "between 0 and 100"),
    ({"kind": "percent", "percent": 5, "per": "week"}, "per must be"),
    ({"kind": "zero", "grace": "soon"}, "length of time"), ({"kinds": "zero"}, "unknown keys")])
def test_a_bad_policy_table_is_refused(data, why):
    """Each mistake in a [late_policy] table is named."""
    with pytest.raises(DeadlineError, match=why):
        LatePolicy.from_dict(data)


def test_policy_round_trips_through_its_dict():
    """The installed form reads back to the same policy."""
    policy = LatePolicy.from_dict({"kind": "percent", "percent": 5, "per": "hour", "cap": 40,
                                   "grace": "15min"})
    assert LatePolicy.from_dict(policy.to_dict()) == policy
    assert policy.describe() == ("5% of the score per started hour late, at most 40% after "
                                 "15 min of grace")
