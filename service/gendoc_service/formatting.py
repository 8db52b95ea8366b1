"""Locale filters of the template language, named after Babel's functions.

`{{ total|format_currency('EUR') }}`, `{{ rate|format_percent }}`,
`{{ due|format_date('long') }}`... format with the request's `locale` and
`timezone` (or the service's defaults); the CLDR data is Babel's. Values may be
numbers, decimals written as strings (read with `Decimal`, so money is never
rounded through a float), and ISO-8601 date, datetime or time strings.

A render sets its `Formatter` with `formatting_with(...)`; the filters, compiled
once into the shared sandboxed environments, read it from a context variable.
A value a filter cannot read is a 422 naming the filter and the value.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError, dates, numbers
from jinja2 import Undefined

from .errors import InvalidFormatValue

Number = int | float | Decimal


def canonical_locale(name: str) -> str:
    """`name` as Babel's identifier (`de-DE` and `de_DE` give `de_DE`); ValueError if unknown."""
    try:
        return str(Locale.parse(name.replace("-", "_")))
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"unknown locale {name!r} (expected e.g. 'de_DE' or 'en-US')") from None


def check_timezone(name: str) -> str:
    """`name` if it is an IANA time zone (e.g. `Europe/Berlin`); ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as "
                         "'Europe/Berlin')") from None
    return name


@dataclass(frozen=True)
class Formatter:
    """One render's locale and time zone, already checked."""

    locale: str = "en_US"
    timezone: str = "UTC"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_DEFAULT = Formatter()
_formatter: ContextVar[Formatter | None] = ContextVar("gendoc_formatter", default=None)


@contextmanager
def formatting_with(formatter: Formatter) -> Iterator[None]:
    token = _formatter.set(formatter)
    try:
        yield
    finally:
        _formatter.reset(token)


def _current() -> Formatter:
    return _formatter.get() or _DEFAULT


def _refuse(filter_name: str, value: Any, expected: str) -> InvalidFormatValue:
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
    return InvalidFormatValue(f"{filter_name} cannot format {shown}: it is not {expected}.",
                              filter=filter_name, value=shown)


def _number(filter_name: str, value: Any) -> Number:
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            parsed = None
        if parsed is not None and parsed.is_finite():
            return parsed
    raise _refuse(filter_name, value, "a number or a decimal string such as '1234.50'")


def _datetime(filter_name: str, value: Any) -> dt.datetime:
    """An aware datetime; a naive one is a wall-clock time in the render's time zone."""
    parsed = value
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if isinstance(parsed, dt.datetime):
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=_current().zone)
    raise _refuse(filter_name, value, "an ISO-8601 datetime such as '2026-03-01T14:30:00Z'")


def _date(filter_name: str, value: Any) -> dt.date:
    """A date; a datetime's date is the one in the render's time zone."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    try:
        moment = _datetime(filter_name, value)
    except InvalidFormatValue:
        raise _refuse(filter_name, value, "an ISO-8601 date such as '2026-03-01'") from None
    return moment.astimezone(_current().zone).date()


def _time(filter_name: str, value: Any) -> dt.time | dt.datetime:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str) and "T" not in value and " " not in value.strip():
        try:
            return dt.time.fromisoformat(value.strip())
        except ValueError:
            pass
    try:
        return _datetime(filter_name, value)
    except InvalidFormatValue:
        raise _refuse(filter_name, value, "an ISO-8601 time such as '14:30'") from None


def format_decimal(value: Any, format: str | None = None) -> str:
    locale = _current().locale
    return str(numbers.format_decimal(_number("format_decimal", value), format=format,
                                      locale=locale))


def format_percent(value: Any, format: str | None = None) -> str:
    locale = _current().locale
    return str(numbers.format_percent(_number("format_percent", value), format=format,
                                      locale=locale))


def format_currency(value: Any, currency: str, format: str | None = None) -> str:
    amount = _number("format_currency", value)
    if not isinstance(currency, str) or not currency.isalpha() or len(currency) != 3:
        raise _refuse("format_currency", currency, "an ISO 4217 currency code such as 'EUR'")
    return str(numbers.format_currency(amount, currency.upper(), format=format,
                                       locale=_current().locale))


def format_date(value: Any, format: str = "medium") -> str:
    return str(dates.format_date(_date("format_date", value), format=format,
                                 locale=_current().locale))


def format_datetime(value: Any, format: str = "medium") -> str:
    current = _current()
    return str(dates.format_datetime(_datetime("format_datetime", value), format=format,
                                     tzinfo=current.zone, locale=current.locale))


def format_time(value: Any, format: str = "medium") -> str:
    current = _current()
    moment = _time("format_time", value)
    # A bare time has no date, so no zone can move it: it is shown as given.
    zone = current.zone if isinstance(moment, dt.datetime) else None
    return str(dates.format_time(moment, format=format, tzinfo=zone, locale=current.locale))


def _missing_stays_missing(function: Callable[..., str]) -> Callable[..., str]:
    """A missing value (Jinja's Undefined) renders as a missing value does, not as a 422.

    Lenient mode shows it empty; strict mode records it (through `str`) and lists it.
    """
    @functools.wraps(function)
    def wrapper(value: Any, *args: Any, **kwargs: Any) -> str:
        undefined = [v for v in (value, *args, *kwargs.values()) if isinstance(v, Undefined)]
        if undefined:
            return "".join(str(v) for v in undefined)
        return function(value, *args, **kwargs)

    return wrapper


FILTERS: dict[str, Callable[..., str]] = {
    f.__name__: _missing_stays_missing(f)
    for f in (format_currency, format_decimal, format_percent, format_date, format_datetime,
              format_time)
}
