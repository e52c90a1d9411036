"""One row per BigQuery scalar type: which Python values it takes and how they reach google-cloud-bigquery.

Each :class:`Scalar` says how a value for that type is *coerced* from what Flyte's transport left of it
(ISO text for a date inside a dataclass, a UTC datetime for a ``date`` input, seconds for a timedelta…),
which classes it then accepts, and how the value is handed to the client, whose own serializers
(``_helpers._SCALAR_VALUE_TO_JSON_PARAM``) produce the REST form. The markers ``TIMESTAMP|DATETIME`` and
``NUMERIC|BIGNUMERIC`` pick the concrete type from the value (``by_value``), and name the type a NULL gets.

What google-cloud-bigquery 3.x cannot express, and what we do instead: it has no INTERVAL serializer (it
passes an unknown type's value through verbatim), so a ``timedelta`` is rendered here in BigQuery's
canonical ``Y-M D H:M:S.F`` form.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
from collections.abc import Callable
from typing import Any

from .bigquery_types import DATETIME_BY_VALUE, DECIMAL_BY_VALUE

__all__ = ["SCALARS", "Refused", "Scalar"]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# NUMERIC is a 38-digit decimal with 9 digits after the point; BIGNUMERIC a 256-bit integer scaled by 10**38.
_NUMERIC_SCALE, _NUMERIC_MAX_UNSCALED = 9, 10**38 - 1
_BIGNUMERIC_SCALE, _BIGNUMERIC_MIN_UNSCALED, _BIGNUMERIC_MAX_UNSCALED = 38, -(2**255), 2**255 - 1
# The largest day part of a BigQuery INTERVAL ("-10000-0 -3660000 -87840000:0:0 to 10000-0 3660000 87840000:0:0").
_INTERVAL_MAX_DAYS = 3_660_000
_MICROS_PER_DAY = 86_400 * 10**6
_UTC = datetime.timezone.utc


class Refused(Exception):
    """A value has no form in its BigQuery type; the message says why without quoting the value."""


# --- value → the value google-cloud-bigquery serializes -----------------------------------------------------------


def _same(value: Any) -> object:
    return value


def _to_int64(value: Any) -> int:
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise Refused("it is outside INT64's range [-2**63, 2**63 - 1]")
    return number


def _to_float(value: Any) -> float:
    # NaN and ±inf are legal FLOAT64 values; the client sends them as the strings "nan"/"inf"/"-inf".
    try:
        return float(value)
    except OverflowError:
        raise Refused("it is outside FLOAT64's range") from None


def _to_bytes(value: Any) -> bytes:
    # The client base64-encodes only real ``bytes``; a bytearray would reach the JSON encoder raw.
    return bytes(value)


def _to_time(value: datetime.time) -> datetime.time:
    if value.utcoffset():
        raise Refused("BigQuery TIME has no time zone; pass a naive time (or one at UTC)")
    return value.replace(tzinfo=None)


def _datetime_type(value: datetime.datetime) -> str:
    # Python's own rule for "aware": a tzinfo that actually yields an offset.
    return "TIMESTAMP" if value.utcoffset() is not None else "DATETIME"


def _to_datetime(value: datetime.datetime) -> datetime.datetime:
    if value.utcoffset() is None:
        # The client would call astimezone() on a tzinfo without an offset, i.e. reinterpret it as local time.
        return value.replace(tzinfo=None)
    try:
        return value.astimezone(_UTC)
    except OverflowError:
        raise Refused("in UTC it falls outside TIMESTAMP's range (years 1 to 9999)") from None


def _to_timestamp(value: datetime.datetime) -> datetime.datetime:
    # A naive value for a declared TIMESTAMP is read as UTC, as BigQuery reads a TIMESTAMP literal without zone.
    return _to_datetime(value if value.utcoffset() is not None else value.replace(tzinfo=_UTC))


def _to_wall_clock(value: datetime.datetime) -> datetime.datetime:
    # An aware value for a declared DATETIME becomes its UTC wall-clock time.
    return _to_datetime(value).replace(tzinfo=None)


def _to_interval(value: datetime.timedelta) -> str:
    """Render BigQuery's canonical INTERVAL text ``Y-M D H:M:S[.F]``: whole days in the day part, the rest in
    the time part, both carrying the sign (a timedelta's own ``days`` may be negative with positive seconds)."""
    total = (value.days * 86_400 + value.seconds) * 10**6 + value.microseconds
    days, rest = divmod(abs(total), _MICROS_PER_DAY)
    if days > _INTERVAL_MAX_DAYS:
        raise Refused(f"it exceeds {_INTERVAL_MAX_DAYS:,} days, BigQuery's INTERVAL range")
    seconds, micros = divmod(rest, 10**6)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    day_sign = "-" if total < 0 and days else ""
    time_sign = "-" if total < 0 and rest else ""
    fraction = f".{micros:06d}" if micros else ""
    return f"0-0 {day_sign}{days} {time_sign}{hours}:{minutes}:{seconds}{fraction}"


def _unscaled(value: decimal.Decimal) -> tuple[int, int]:
    """A finite decimal as (integer, scale) with value == integer / 10**scale, trailing zeros dropped. Exact:
    ``normalize``/``scaleb`` would round to the context's 28 digits."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    if exponent < 0:
        dropped = min(len(text) - len(text.rstrip("0")), -exponent)
        text, exponent = text[: len(text) - dropped], exponent + dropped
    number = int(text or "0") * 10 ** max(exponent, 0)
    return (-number if sign else number), max(-exponent, 0)


def _decimal_type(value: decimal.Decimal) -> str:
    if not value.is_finite():
        raise Refused("NaN and Infinity have no NUMERIC or BIGNUMERIC form")
    if value.is_zero():
        return "NUMERIC"
    if value.adjusted() > 38:  # larger than any BIGNUMERIC; also keeps _unscaled from building a huge integer
        raise Refused("it is larger than BIGNUMERIC's range (about ±5.79E+38)")
    number, scale = _unscaled(value)
    if scale <= _NUMERIC_SCALE and abs(number * 10 ** (_NUMERIC_SCALE - scale)) <= _NUMERIC_MAX_UNSCALED:
        return "NUMERIC"
    if scale <= _BIGNUMERIC_SCALE:
        if _BIGNUMERIC_MIN_UNSCALED <= number * 10 ** (_BIGNUMERIC_SCALE - scale) <= _BIGNUMERIC_MAX_UNSCALED:
            return "BIGNUMERIC"
        raise Refused("it is outside BIGNUMERIC's range (about ±5.79E+38)")
    raise Refused("it has more than 38 digits after the point (BIGNUMERIC's scale); round it first")


def _numeric_type(value: decimal.Decimal) -> str:
    if _decimal_type(value) != "NUMERIC":
        raise Refused("it does not fit NUMERIC (38 digits, 9 after the point)")
    return "NUMERIC"


def _bignumeric_type(value: decimal.Decimal) -> str:
    _decimal_type(value)
    return "BIGNUMERIC"


def _to_decimal(value: decimal.Decimal) -> str:
    # Fixed-point text: str(Decimal) may use exponent notation ('-1E+40'); the client sends whatever it gets.
    return format(value, "f")


def _to_json(value: Any) -> object:
    # The client json.dumps the object itself (a pre-dumped string would be double-encoded), so only check here
    # that it can: failing now names the input; failing inside the client would not.
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise Refused("it holds something JSON cannot represent (a non-JSON type, NaN/Infinity, or a cycle)") from None
    return value


# --- coercion: what Flyte's transport left of a value → the Python value of the declared type ----------------------


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _coerce_date(value: Any) -> Any:
    if isinstance(value, datetime.datetime):  # Flyte carries a date input as a datetime at midnight UTC
        return value.date()
    return datetime.date.fromisoformat(value) if isinstance(value, str) else value


def _coerce_time(value: Any) -> Any:
    return datetime.time.fromisoformat(value) if isinstance(value, str) else value


def _coerce_datetime(value: Any) -> Any:
    return datetime.datetime.fromisoformat(value) if isinstance(value, str) else value


def _coerce_interval(value: Any) -> Any:
    return datetime.timedelta(seconds=float(value)) if _is_number(value) else value


def _coerce_decimal(value: Any) -> Any:
    return decimal.Decimal(str(value)) if _is_number(value) or isinstance(value, str) else value


def _coerce_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


@dataclasses.dataclass(frozen=True)
class Scalar:
    """How a value becomes a parameter of one BigQuery scalar type."""

    #: The Python type users declare for it, for messages.
    python: str
    accepts: tuple[type, ...]
    convert: Callable[[Any], object]
    rejects: tuple[type, ...] = ()
    coerce: Callable[[Any], Any] | None = None
    #: The concrete type a value needs (a marker's choice, or a range check); None: the type itself.
    by_value: Callable[[Any], str] | None = None
    #: The type of a NULL of a marker (a guess: a sibling array element's real type wins).
    null: str | None = None


_DATETIME = "datetime.datetime"
_DECIMAL = "decimal.Decimal"

SCALARS: dict[str, Scalar] = {
    "BOOL": Scalar("bool", (bool,), _same),
    "INT64": Scalar("int", (int,), _to_int64, rejects=(bool,)),
    "FLOAT64": Scalar("float", (float, int), _to_float, rejects=(bool,)),
    "STRING": Scalar("str", (str,), _same),
    "BYTES": Scalar("bytes", (bytes, bytearray), _to_bytes),
    "DATE": Scalar("datetime.date", (datetime.date,), _same, (datetime.datetime,), _coerce_date),
    "TIME": Scalar("datetime.time", (datetime.time,), _to_time, coerce=_coerce_time),
    # Flyte's datetimes are instants, so a NULL datetime is typed TIMESTAMP as a non-NULL one would be.
    DATETIME_BY_VALUE: Scalar(
        _DATETIME,
        (datetime.datetime,),
        _to_datetime,
        coerce=_coerce_datetime,
        by_value=_datetime_type,
        null="TIMESTAMP",
    ),
    "TIMESTAMP": Scalar(_DATETIME, (datetime.datetime,), _to_timestamp, coerce=_coerce_datetime),
    "DATETIME": Scalar(_DATETIME, (datetime.datetime,), _to_wall_clock, coerce=_coerce_datetime),
    "INTERVAL": Scalar("datetime.timedelta", (datetime.timedelta,), _to_interval, coerce=_coerce_interval),
    DECIMAL_BY_VALUE: Scalar(
        _DECIMAL, (decimal.Decimal,), _to_decimal, (), _coerce_decimal, _decimal_type, null="NUMERIC"
    ),
    "NUMERIC": Scalar(_DECIMAL, (decimal.Decimal,), _to_decimal, coerce=_coerce_decimal, by_value=_numeric_type),
    "BIGNUMERIC": Scalar(_DECIMAL, (decimal.Decimal,), _to_decimal, coerce=_coerce_decimal, by_value=_bignumeric_type),
    "JSON": Scalar("dict", (dict,), _to_json, coerce=_coerce_json),
}
