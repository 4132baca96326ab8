"""Due dates and the late policy: local times read in a named timezone, and the penalty a late
submission earns.

* :func:`parse_time` reads a date and time as an instructor writes it (``2026-10-20 23:59`` in
  the course's timezone, or with an explicit offset or ``Z``) and returns an aware UTC time. A
  local time that does not exist (the hour skipped when clocks go forward) or that exists twice
  (the hour repeated when they go back) is refused with a message that says so, never guessed.
* :func:`gradebook_time` is the form nbgrader keeps in its gradebook and ``timestamp.txt``
  (naive UTC); :func:`timestamp_text` the text nbgrader writes into ``timestamp.txt``.
* :class:`LatePolicy` is the late policy: ``none`` (nbgrader's default), ``zero`` (a late
  submission scores 0, nbgrader's ``LateSubmissionPlugin.penalty_method = 'zero'``) or
  ``percent`` (a percentage of the score earned per started day or hour late, capped), each
  after an optional grace period. Its :meth:`LatePolicy.penalty` is what nbgrader's
  ``AssignLatePenalties`` stores as ``SubmittedNotebook.late_submission_penalty``: points,
  between 0 and the score.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = dt.UTC
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"   # nbgrader's timestamp.txt
_LOCAL = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?")
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(d|days?|h|hours?|min|minutes?|m|s)\s*", re.I)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class DeadlineError(ValueError):
    """A time, timezone, duration or policy that cannot be used; ``str()`` says why."""


def zone(name: str) -> ZoneInfo:
    """The IANA timezone ``name`` (e.g. ``Europe/Berlin``), or :class:`DeadlineError`."""
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DeadlineError(f"unknown timezone {name!r} (use an IANA name such as "
                            f"'Europe/Berlin' or 'America/New_York'): {exc}") from None


def parse_time(text: Any, tz: ZoneInfo) -> dt.datetime:
    """``text`` as an aware UTC time: ``YYYY-MM-DD HH:MM[:SS]`` in ``tz``, or with an offset
    (``+02:00``, ``Z``) that then wins. A date without a time is refused (is it the start or
    the end of the day?), and so is a local time that the clock skips or shows twice."""
    raw = str(text).strip()
    offset = _OFFSET.search(raw)
    local = raw[:offset.start()].rstrip() if offset else raw
    if not _LOCAL.fullmatch(local):
        raise DeadlineError(f"{raw!r} is not a date and time such as '2026-10-20 23:59' "
                            "(a date alone is refused: give the time of day too)")
    try:
        naive = dt.datetime.fromisoformat(local.replace(" ", "T"))
    except ValueError as exc:
        raise DeadlineError(f"{raw!r} is not a valid date and time: {exc}") from None
    if offset:
        try:
            return dt.datetime.fromisoformat(local.replace(" ", "T") + offset.group()
                                             .replace("Z", "+00:00")).astimezone(UTC)
        except ValueError as exc:
            raise DeadlineError(f"{raw!r} has an invalid offset: {exc}") from None
    return localize(naive, tz, raw)


def localize(naive: dt.datetime, tz: ZoneInfo, raw: str = "") -> dt.datetime:
    """The wall-clock time ``naive`` in ``tz`` as an aware UTC time; a time the clock skips or
    shows twice is a :class:`DeadlineError` (``raw``: the text it was read from)."""
    raw = raw or str(naive)
    first, second = naive.replace(tzinfo=tz, fold=0), naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        earlier, later = sorted((first.astimezone(UTC), second.astimezone(UTC)))
        if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
            raise DeadlineError(
                f"{raw!r} does not exist in {tz.key}: the clocks skip that hour (daylight "
                "saving time begins); give another time or an explicit offset")
        raise DeadlineError(
            f"{raw!r} happens twice in {tz.key} (daylight saving time ends): it is "
            f"{earlier:%H:%M} or {later:%H:%M} UTC; give an explicit offset such as "
            f"'{naive:%Y-%m-%d %H:%M} {first.strftime('%z')}'")
    return first.astimezone(UTC)


def gradebook_time(when: dt.datetime | None) -> dt.datetime | None:
    """An aware time as nbgrader's gradebook keeps it: naive, in UTC."""
    if when is None:
        return None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def aware(when: dt.datetime | None) -> dt.datetime | None:
    """A gradebook time (naive UTC) as an aware UTC time."""
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def timestamp_text(when: dt.datetime) -> str:
    """The text nbgrader writes into ``timestamp.txt`` for ``when``."""
    return aware(when).strftime(TIMESTAMP_FORMAT)


def parse_duration(text: Any) -> dt.timedelta:
    """``2d``, ``36h``, ``90min``, ``1d 12h``: a positive length of time."""
    raw = str(text).strip()
    pos, total = 0, 0.0
    while pos < len(raw):
        m = _DURATION.match(raw, pos)
        if m is None:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)[0].lower()]
        pos = m.end()
    if not raw or pos != len(raw) or total <= 0:
        raise DeadlineError(f"{raw!r} is not a length of time such as '2d', '36h', '90min' "
                            "or '1d 12h'")
    return dt.timedelta(seconds=total)


def human_duration(seconds: float) -> str:
    """``93784`` -> ``1 d 2 h 3 min``; under a minute in seconds."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "",
             f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p)


def local_text(when: dt.datetime | None, tz: ZoneInfo) -> str:
    """``when`` as a wall-clock time in ``tz`` with its zone abbreviation."""
    if when is None:
        return ""
    return aware(when).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


class PenaltyKind(enum.Enum):
    """What lateness costs: nothing, everything, or a percentage per started unit."""

    NONE = "none"
    ZERO = "zero"
    PERCENT = "percent"


class Per(enum.Enum):
    """The unit a percentage penalty counts, in seconds."""

    DAY = 86400
    HOUR = 3600


@dataclass(frozen=True)
class LatePolicy:
    """The late policy. ``percent`` of the score earned is taken per started ``per`` (day or
    hour) late, at most ``cap`` percent; nothing is taken within ``grace_seconds`` of the due
    date (a late submission within the grace period counts as on time)."""

    kind: PenaltyKind = PenaltyKind.NONE
    percent: float = 0.0
    per: Per = Per.DAY
    cap: float = 100.0
    grace_seconds: float = 0.0

    def __post_init__(self):
        if not 0 <= self.percent <= 100 or not math.isfinite(self.percent):
            raise DeadlineError(f"late policy: percent must be between 0 and 100, not "
                                f"{self.percent}")
        if not 0 <= self.cap <= 100 or not math.isfinite(self.cap):
            raise DeadlineError(f"late policy: cap must be between 0 and 100, not {self.cap}")
        if self.grace_seconds < 0 or not math.isfinite(self.grace_seconds):
            raise DeadlineError("late policy: the grace period must not be negative")
        if self.kind is PenaltyKind.PERCENT and self.percent == 0:
            raise DeadlineError("late policy 'percent' needs a percent above 0")

    def percent_taken(self, seconds_late: float) -> float:
        """The percentage of the score taken for a submission ``seconds_late`` past its due
        date."""
        if seconds_late <= self.grace_seconds or self.kind is PenaltyKind.NONE:
            return 0.0
        if self.kind is PenaltyKind.ZERO:
            return 100.0
        return min(self.cap, self.percent * math.ceil(seconds_late / self.per.value))

    def penalty(self, score: float, seconds_late: float) -> float | None:
        """The penalty in points, as nbgrader stores it: None when the policy takes nothing
        (nbgrader's ``none``), else between 0 and ``score`` (rounded to 6 decimals, so 20% of
        3 is 0.6)."""
        if self.kind is PenaltyKind.NONE or seconds_late <= 0:
            return None
        score = max(0.0, score)
        return min(score, round(score * self.percent_taken(seconds_late) / 100.0, 6))

    def describe(self) -> str:
        grace = (f" after {human_duration(self.grace_seconds)} of grace"
                 if self.grace_seconds else "")
        if self.kind is PenaltyKind.NONE:
            return "no late penalty"
        if self.kind is PenaltyKind.ZERO:
            return f"a late submission scores 0{grace}"
        unit = "day" if self.per is Per.DAY else "hour"
        return (f"{self.percent:g}% of the score per started {unit} late, at most "
                f"{self.cap:g}%{grace}")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "percent": self.percent, "per": self.per.name.lower(),
                "cap": self.cap, "grace_seconds": self.grace_seconds}

    @classmethod
    def from_dict(cls, data: Any) -> LatePolicy:
        """A policy from a term file's ``[late_policy]`` table or :meth:`to_dict`'s form."""
        if not isinstance(data, dict):
            raise DeadlineError("late policy: expected a table (kind, percent, per, cap, grace)")
        known = {"kind", "percent", "per", "cap", "grace", "grace_seconds"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DeadlineError(f"late policy: unknown keys {unknown} (known: "
                                f"{sorted(known)})")
        try:
            kind = PenaltyKind(str(data.get("kind", "none")).lower())
        except ValueError:
            raise DeadlineError(f"late policy: kind must be one of none, zero, percent, not "
                                f"{data.get('kind')!r}") from None
        per_name = str(data.get("per", "day")).upper()
        if per_name not in Per.__members__:
            raise DeadlineError(f"late policy: per must be 'day' or 'hour', not "
                                f"{data.get('per')!r}")
        grace = data.get("grace_seconds")
        if grace is None:
            grace = parse_duration(data["grace"]).total_seconds() if data.get("grace") else 0.0
        try:
            return cls(kind=kind, percent=float(data.get("percent", 0.0)),
                       per=Per[per_name], cap=float(data.get("cap", 100.0)),
                       grace_seconds=float(grace))
        except (TypeError, ValueError) as exc:
            if isinstance(exc, DeadlineError):
                raise
            raise DeadlineError(f"late policy: {exc}") from None
