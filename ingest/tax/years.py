"""Tax calendars: which day a timestamp falls on and which tax year that day belongs to.

US and Canadian years are calendar years (key ``"2024"``) on the UTC date (the engine has no
taxpayer time zone; UTC is the convention of the exports). The UK tax year runs 6 April to
5 April (key ``"2024/25"``) and UK days are London days: HMRC's same-day and 30-day rules and the
tax-year boundary are in UK local time, so a trade at 23:30 UTC in British Summer Time is the next
day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROS_PER_HOUR = 3_600_000_000
MICROS_PER_DAY = 24 * MICROS_PER_HOUR
LONDON = ZoneInfo("Europe/London")


def datetime_from_micros(time_us: int) -> datetime:
    """UTC datetime of a microsecond timestamp, exactly (no float on the way)."""
    return EPOCH + timedelta(microseconds=time_us)


def micros_from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@lru_cache(maxsize=1 << 16)
def utc_date_of_day(day_index: int) -> date:
    return date(1970, 1, 1) + timedelta(days=day_index)


def utc_date(time_us: int) -> date:
    return utc_date_of_day(time_us // MICROS_PER_DAY)


@lru_cache(maxsize=1 << 18)
def _london_date_of_hour(hour_index: int) -> date:
    # London's offset changes only on whole UTC hours, so one lookup per hour is exact.
    return datetime_from_micros(hour_index * MICROS_PER_HOUR).astimezone(LONDON).date()


def london_date(time_us: int) -> date:
    return _london_date_of_hour(time_us // MICROS_PER_HOUR)


def london_day_start_us(time_us: int) -> int:
    """00:00 London time of the London day holding ``time_us`` (the clocks change at 01:00 UTC,
    never at midnight: it exists once)."""
    return micros_from_datetime(datetime.combine(london_date(time_us), time(), tzinfo=LONDON))


def calendar_year(day: date) -> str:
    return str(day.year)


def calendar_year_start_us(year: int) -> int:
    return micros_from_datetime(datetime(year, 1, 1, tzinfo=timezone.utc))


def uk_tax_year_start_us(year: int) -> int:
    """6 April ``year``, 00:00 London time."""
    return micros_from_datetime(datetime(year, 4, 6, tzinfo=LONDON))


def uk_tax_year(day: date) -> str:
    """``"2024/25"`` for 6 April 2024 .. 5 April 2025."""
    start = day.year if (day.month, day.day) >= (4, 6) else day.year - 1
    return f"{start}/{(start + 1) % 100:02d}"


@lru_cache(maxsize=1 << 16)
def one_year_after(day: date) -> date:
    """The anniversary date; 29 February maps to 28 February (no 29th in the next year)."""
    try:
        return day.replace(year=day.year + 1)
    except ValueError:
        return date(day.year + 1, 2, 28)


def is_long_term(date_acquired: date, date_sold: date) -> bool:
    """IRS: long-term when held more than one year, i.e. sold after the anniversary date."""
    return date_sold > one_year_after(date_acquired)
