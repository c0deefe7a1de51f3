"""The one decoding layer for what a server sends: headers, bodies, and the fields inside them.

Every reader here is total. Whatever arrives (any size, nesting depth, number, encoding or type), it returns a
value of the documented type and range or raises :class:`Malformed`; a header reader returns None instead (a
header that cannot be read counts as one that was not sent). No other exception gets out. The transport, the
API clients, the OAuth token answers, the throttle's usage header, the processor certificate's discovery
document, callbacks and every line of a results archive read through it, so a new kind of bad input is closed
once, here, for all of them.

* **Headers** (RFC 9110): numbers are ASCII digits of bounded length. ``str.isdigit`` accepts "²" and "٣", and
  ``int``/``float`` accept "٣", "+1", "1_0" and " 1 ", so neither is used on a header. Repeated headers (which
  ``requests`` joins with ", ") are unreadable, not merged.
* **JSON** (RFC 8259): UTF-8 only, at most ``max_bytes``; nesting deeper than ``max_depth``, or more than
  ``max_containers`` arrays and objects, is refused *before* the parser runs, so it never recurses far whatever
  the thread's stack and never builds millions of empty lists. That pre-check (:func:`json_shape`) is one
  forward pass over the bytes, a small state machine (outside or inside a string, escapes, depth): its cost is
  linear in the body whatever the bytes, with no regular expression that could backtrack, and it holds the GIL
  only for that pass; duplicate keys are refused (two parsers
  would read two different answers from the same signed bytes); numbers are finite and at most
  :data:`MAX_NUMBER_CHARS` long (no NaN, Infinity, 1e999 or 10**4000); strings hold no lone surrogate (text that
  cannot be written as UTF-8 later): refused in an answer, replaced by U+FFFD in data (a results archive line).
* **Fields**: typed readers with a range: :func:`field_str`, :func:`field_int`, :func:`field_time`,
  :func:`field_enum`, :func:`field_number`, :func:`obj`.
* **Anything else**: :func:`decode` runs a reader written on top of these and reports any other exception it
  raises as :class:`Malformed` (logged with its type and line, never its message, which may quote the server),
  so even a reader's own oversight cannot turn a hostile answer into an unclassified failure.

:class:`Malformed` means "not what the API documents": the transport retries it and, in the end, reports
"try again later", so a pending request stays pending; it is never read as a verdict.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar
from urllib.parse import urljoin

from connector_mparticle.errors import MParticleError
from connector_mparticle.http import deadline
from connector_mparticle.http.json_shape import MAX_CONTAINERS, MAX_DEPTH, JsonShape, json_shape

__all__ = ["MAX_CONTAINERS", "MAX_DEPTH", "MAX_JSON_BYTES", "MAX_NUMBER_CHARS", "JsonShape", "Malformed",
           "bounded_body", "decode", "field_enum", "field_int", "field_number", "field_str", "field_time",
           "header_percent", "header_seconds", "header_size", "headers_lowered", "json_body", "json_shape", "obj",
           "redirect_target"]

T = TypeVar("T")
MAX_JSON_BYTES = 1024 * 1024  #: the largest JSON answer read (a status object is a few hundred bytes)
MAX_NUMBER_CHARS = 100  #: an mpid has 20 characters, a timestamp in milliseconds 13
MAX_HEADER_CHARS = 256  #: of a header holding a number or a date
MAX_URL_CHARS = 8192
#: RFC 3339 (section 5.6), ASCII digits only; seconds 60 is a leap second.
_RFC3339 = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?"
                      r"([Zz]|[+-][0-9]{2}:[0-9]{2})")
_NO_ZONE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?")
_SECONDS = re.compile(r"[0-9]{1,10}")
_SIZE = re.compile(r"[0-9]{1,19}")
_PERCENT = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,6})?")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")  #: json pairs escaped surrogates itself: any left is alone
_log = logging.getLogger("connector_mparticle.http.answers")


class Malformed(Exception):
    """An answer that is not what the API documents (a 200 without an mpid, a status for another request, a
    status value outside the spec, a body nested too deep). Worth another attempt; never read as a verdict."""


# -- headers ------------------------------------------------------------------------------------------------


def _header(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_HEADER_CHARS:
        return None
    return value.strip(" \t")


def header_seconds(value: Any, now: float | None = None) -> float | None:
    """``Retry-After``: seconds to wait (delay-seconds, or an HTTP-date from ``now``); None if absent or unreadable."""
    text = _header(value)
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
        if when.tzinfo is None:  # "-0000": RFC 5322's "UTC, origin unknown"; HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (datetime.now(UTC).timestamp() if now is None else now)
    except (TypeError, ValueError, OverflowError, IndexError, OSError):
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def header_size(value: Any) -> int | None:
    """``Content-Length``: a byte count; None if absent or unreadable (the body's own length then decides)."""
    text = _header(value)
    return int(text) if text and _SIZE.fullmatch(text) else None


def header_percent(value: Any) -> float | None:
    """``X-mp-rate-limit-percentage-used``: a percentage from 0 to 9999; None if absent or unreadable."""
    text = _header(value)
    return float(text) if text and _PERCENT.fullmatch(text) else None


def redirect_target(base: str, location: Any) -> str:
    """Where a redirect's ``Location`` points, resolved against ``base``; :class:`Malformed` if it cannot be read.
    (Whether the connector may go there is the URL policy's decision.)"""
    if not isinstance(location, str) or not location or len(location) > MAX_URL_CHARS:
        raise Malformed("a redirect without a usable Location")
    try:
        return urljoin(base, location)
    except ValueError:  # "http://[::1": an unbalanced IPv6 literal
        raise Malformed("a redirect whose Location is not a URL") from None


# -- bodies -------------------------------------------------------------------------------------------------


class _Stream(Protocol):
    def iter_content(self, chunk_size: int) -> Iterator[bytes]: ...


def bounded_body(response: _Stream, limit: int, chunk_bytes: int = 64 * 1024,
                 check: Callable[[], None] = lambda: None) -> bytes:
    """A streamed body, read in chunks; :class:`Malformed` as soon as it exceeds ``limit`` bytes. ``check`` runs
    after each chunk (the call's deadline). The bytes are gathered in one growing buffer: a server that sends a
    megabyte as a million one-byte HTTP chunks makes a million chunk objects, which must not all be kept. Errors
    of the stream itself are the caller's to translate."""
    body = bytearray()
    for chunk in response.iter_content(chunk_size=chunk_bytes):
        body += chunk
        if len(body) > limit:
            raise Malformed(f"an answer larger than {limit // 1024} KB")
        check()
    return bytes(body)


def _number(text: str) -> str:
    if len(text) > MAX_NUMBER_CHARS:
        raise Malformed("a number too long to be mParticle's")
    return text


def _int(text: str) -> int:
    return int(_number(text))


def _float(text: str) -> float:
    value = float(_number(text))
    if not math.isfinite(value):  # 1e999
        raise Malformed("a number out of range")
    return value


def _constant(name: str) -> Any:
    raise Malformed(f"{name}, which is not a JSON number")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise Malformed("an object with a duplicate key")
    return value


def _lone_surrogates(value: Any) -> bool:
    """Whether any string in ``value`` (keys included) holds a lone surrogate; iterative, any size."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _replace_surrogates(value: Any) -> Any:
    """``value`` with every lone surrogate replaced by U+FFFD (recursive: the depth is already bounded)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replace_surrogates(k): _replace_surrogates(v) for k, v in value.items()}
    return value


def json_body(raw: bytes | str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_DEPTH,
              max_containers: int = MAX_CONTAINERS, repair_text: bool = False) -> Any:
    """The JSON value ``raw`` holds, read under the rules in the module docstring; :class:`Malformed` otherwise.
    ``repair_text``: lone surrogates become U+FFFD instead of a refusal (for data, where one broken character
    must not cost the rest)."""
    if len(raw) > max_bytes:
        raise Malformed(f"a body larger than {max_bytes // 1024} KB")
    try:
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeError:
        raise Malformed("a body that is not UTF-8") from None
    _check_shape(data, max_depth, max_containers)
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_int=_int, parse_float=_float,
                           parse_constant=_constant)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError
        raise Malformed("a body that is not JSON") from None
    if _SURROGATE_ESCAPE.search(data) and _lone_surrogates(value):
        if not repair_text:
            raise Malformed("a string holding a lone surrogate (not Unicode text)")
        value = _replace_surrogates(value)
    return value


def _check_shape(data: bytes, max_depth: int, max_containers: int) -> None:
    """:class:`Malformed` if ``data`` nests deeper than ``max_depth`` or holds more than ``max_containers``
    arrays and objects; the scan stops at the current hook call's deadline. (The quick count includes brackets
    inside strings: when even that is within the depth, no scan is needed.)"""
    if data.count(b"[") + data.count(b"{") <= max_depth:
        return
    running = deadline.current()
    shape = json_shape(data, max_depth, max_containers, running.check if running is not None else lambda: None)
    if shape.depth > max_depth:
        raise Malformed(f"JSON nested deeper than {max_depth} levels")
    if shape.containers > max_containers:
        raise Malformed(f"JSON holding more than {max_containers} arrays and objects")


def decode(read: Callable[[], T], what: str) -> T:
    """``read()``, with any failure other than :class:`Malformed` or the connector's own errors reported as
    :class:`Malformed` ("``what`` that could not be read"), so a reader of server bytes is total by construction."""
    try:
        return read()
    except (Malformed, MParticleError):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a reader's oversight raises, the answer is not mParticle's word
        # Where, not what: an exception's message may quote the server's text (a secret it echoed, say).
        where = traceback.extract_tb(exc.__traceback__)[-1]
        _log.warning("%s could not be read: %s at %s:%s (a reader did not expect this shape)", what,
                     type(exc).__name__, where.filename.rsplit("/", 1)[-1], where.lineno)
        raise Malformed(f"{what} that could not be read ({type(exc).__name__})") from None


# -- fields -------------------------------------------------------------------------------------------------


def obj(value: Any, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object; :class:`Malformed` otherwise."""
    if not isinstance(value, dict):
        raise Malformed(f"{what} that is not a JSON object")
    return value


def field_str(value: Any, what: str, *, max_chars: int = 4096, optional: bool = True,
              pattern: re.Pattern[str] | None = None) -> str | None:
    """A non-empty string of at most ``max_chars`` (matching ``pattern`` in full), or None when absent and
    ``optional``; :class:`Malformed` otherwise."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise Malformed(f"{what} that is not a string of 1 to {max_chars} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise Malformed(f"{what} in an unexpected form")
    return value


_INTEGER_TEXT = re.compile(f"-?[0-9]{{1,{MAX_NUMBER_CHARS}}}")


def field_int(value: Any, what: str, lo: int, hi: int, *, text: bool = False) -> int:
    """An integer from ``lo`` to ``hi`` (never a bool); with ``text``, also its ASCII decimal string.
    :class:`Malformed` otherwise."""
    if isinstance(value, str) and text and _INTEGER_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise Malformed(f"{what} that is not an integer")
    if not lo <= value <= hi:
        raise Malformed(f"{what} out of range")
    return value


def field_number(value: Any, lo: float, hi: float) -> float | None:
    """A finite JSON number from ``lo`` to ``hi``; None for anything else (for advisory fields, where a bad value
    is ignored rather than refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and lo <= number <= hi else None


def field_enum(value: Any, what: str, allowed: tuple[str, ...]) -> str:
    """One of ``allowed``, exactly; :class:`Malformed` otherwise."""
    if not isinstance(value, str) or value not in allowed:
        raise Malformed(f"{what} outside {', '.join(allowed)}")
    return value


def field_time(value: Any, what: str, earliest: datetime, latest: datetime, *,
               utc_if_no_zone: bool = False) -> datetime | None:
    """An RFC 3339 timestamp with a time zone, from ``earliest`` to ``latest``, in UTC; None when absent.

    A leap second (``:60``) is read as the last microsecond of its minute (``datetime`` has no second 60). With
    ``utc_if_no_zone``, a timestamp that names no zone is read as UTC (for fields an API documents "in UTC" and
    writes without one)."""
    if value is None:
        return None
    if utc_if_no_zone and isinstance(value, str) and _NO_ZONE.fullmatch(value):
        value += "Z"
    match = _RFC3339.fullmatch(value) if isinstance(value, str) and len(value) <= 40 else None
    if match is None:
        raise Malformed(f"{what} that is not an RFC 3339 timestamp with a time zone")
    try:
        parsed = _timestamp(match)
    except (ValueError, OverflowError):
        raise Malformed(f"{what} that is not a valid date and time") from None
    if not earliest <= parsed <= latest:
        raise Malformed(f"{what} out of range ({parsed.year})")
    return parsed


def _timestamp(match: re.Match[str]) -> datetime:
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
    if second == 60:
        second, micro = 59, 999_999
    text = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{micro:06d}"
    offset = "+00:00" if zone in ("Z", "z") else zone
    return datetime.fromisoformat(text + offset).astimezone(UTC)


def headers_lowered(headers: Mapping[str, Any]) -> dict[str, str]:
    """``headers`` with lower-case names, keeping only text values (what a reader may look at)."""
    return {k.lower(): v for k, v in headers.items() if isinstance(k, str) and isinstance(v, str)}
