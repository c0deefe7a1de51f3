"""The decoding layer (``http/answers.py``) is total: any header, body or field gives a typed value or Malformed.

Each property states a guarantee over generated input, not a list: whatever text a header holds, whatever bytes a
body holds (any shape, nesting, number, encoding), the reader returns a value of its documented type and range,
or :class:`Malformed` (None for a header); nothing else ever escapes.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector_mparticle.errors import OutOfTimeError, RetryLaterError
from connector_mparticle.http.answers import (
    MAX_CONTAINERS,
    MAX_DEPTH,
    MAX_NUMBER_CHARS,
    Malformed,
    bounded_body,
    decode,
    field_enum,
    field_int,
    field_number,
    field_str,
    field_time,
    header_percent,
    header_seconds,
    header_size,
    json_body,
    json_shape,
    redirect_target,
)
from connector_mparticle.http.deadline import bounded
from connector_mparticle.http.json_shape import CHECK_EVERY

PROPERTY = settings(max_examples=300, deadline=None, derandomize=True)
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)

#: Digits that ``str.isdigit`` (and some of them ``int``) accept but that are not ASCII.
UNICODE_DIGITS = "²³¹٣۳०১੧௫൬๓໔༣၅႑០᠑᥇᧐᪀᭐᮰᱀᱐꘠꣐꤀꧐꩐꯰０𝟎𝟘🯰"
header_text = st.text(max_size=40) | st.sampled_from([
    "²", "٣", "\uff11\uff12", "1e999", "nan", "inf", "-1", "+5", "5_0", " 7 ", "0x10", "9" * 30, "5, 10", "",
    "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT",
    "Sun, 06 Nov 1994 08:49:37 -0000", "Thu, 32 Jan 2026 00:00:00 GMT", "\x00", "3\r\nX-Injected: 1"]) | \
    st.text(alphabet=st.sampled_from("0123456789" + UNICODE_DIGITS), min_size=1, max_size=12)
json_leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
               | st.text(max_size=20))
json_values = st.recursive(json_leaves, lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=30)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


@PROPERTY
@given(value=header_text | st.none() | st.integers() | st.binary(max_size=8))
def test_every_header_reader_gives_a_finite_number_or_none_and_reads_only_ascii_digits(value: Any) -> None:
    for reader in (header_seconds, header_size, header_percent):
        number = reader(value)
        assert number is None or (math.isfinite(number) and number >= 0)
    text = value.strip(" \t") if isinstance(value, str) else ""
    if any(c in UNICODE_DIGITS for c in text):
        assert header_size(value) is None and header_percent(value) is None
    if header_size(value) is not None:
        assert text.isascii() and text.isdigit() and header_size(value) == int(text)


@PROPERTY
@given(seconds=st.integers(0, 10**10 - 1), pad=st.sampled_from(["", " ", "\t"]))
def test_retry_after_in_ascii_digits_is_read_exactly(seconds: int, pad: str) -> None:
    assert header_seconds(f"{pad}{seconds}{pad}") == float(seconds)
    assert header_size(str(seconds)) == seconds


@PROPERTY
@given(raw=st.binary(max_size=300))
def test_any_bytes_are_json_or_malformed(raw: bytes) -> None:
    with contextlib.suppress(Malformed):
        json_body(raw)


@PROPERTY
@given(value=json_values)
def test_json_within_the_limits_reads_as_the_standard_parser_reads_it(value: Any) -> None:
    raw = json.dumps(value).encode()
    if depth(value) <= MAX_DEPTH:
        assert json_body(raw) == json.loads(raw)
    else:
        with pytest.raises(Malformed):
            json_body(raw)


@PROPERTY
@given(levels=st.integers(0, 200_000), opener=st.sampled_from(["[", '{"a":', '{"[[":']),
       inside=st.sampled_from(["1", '"x"', '"]]]"']))
def test_nesting_of_any_depth_is_read_or_refused_without_recursing(levels: int, opener: str, inside: str) -> None:
    closer = "]" if opener == "[" else "}"
    raw = (opener * levels + inside + closer * levels).encode()
    if levels <= MAX_DEPTH:
        assert depth(json_body(raw)) == levels
    else:
        with pytest.raises(Malformed):
            json_body(raw)


@PROPERTY
@given(digits=st.integers(1, 10_000), kind=st.sampled_from(["int", "negative", "exponent", "fraction"]))
def test_numbers_of_any_size_are_finite_values_or_malformed(digits: int, kind: str) -> None:
    text = {"int": "9" * digits, "negative": "-" + "9" * digits, "exponent": f"1e{'9' * min(digits, 400)}",
            "fraction": "0." + "1" * digits}[kind]
    try:
        value = json_body(f'{{"n": {text}}}'.encode())["n"]
    except Malformed:
        assert len(text) > MAX_NUMBER_CHARS or kind == "exponent"
        return
    assert math.isfinite(value) and len(text) <= MAX_NUMBER_CHARS


@pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b"-Infinity", b'{"a": 1e999}', b'{"a": 1, "a": 2}',
                                 b'"\\ud800"', b'["\\udc00x"]', b'{"\\ud83d": 1}', b"\xff", b"\xef\xbb\xbf{}",
                                 b'"\x00"', b"{", b"", b"1 2", "\"é\"".encode("utf-16")])
def test_answers_that_are_not_strict_json_are_malformed(raw: bytes) -> None:
    with pytest.raises(Malformed):
        json_body(raw)


def test_a_surrogate_pair_escape_is_ordinary_text() -> None:
    assert json_body(b'"\\ud83d\\ude00"') == "\U0001F600"


@PROPERTY
@given(value=json_values | header_text | st.integers(min_value=-(10**30), max_value=10**30))
def test_field_readers_give_their_type_in_range_or_malformed(value: Any) -> None:
    checks = [
        (lambda: field_int(value, "n", -5, 10**6, text=True), lambda v: isinstance(v, int) and -5 <= v <= 10**6),
        (lambda: field_str(value, "s", max_chars=10), lambda v: v is None or (isinstance(v, str) and 0 < len(v) <= 10)),
        (lambda: field_time(value, "t", EARLIEST, LATEST), lambda v: v is None or EARLIEST <= v <= LATEST),
        (lambda: field_enum(value, "e", ("pending", "completed")), lambda v: v in ("pending", "completed")),
    ]
    for read, holds in checks:
        with contextlib.suppress(Malformed):
            assert holds(read())
    number = field_number(value, 1, 86_400)
    assert number is None or 1 <= number <= 86_400


@PROPERTY
@given(stamp=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
       zone=st.sampled_from(["Z", "z", "+00:00", "-23:59", "+14:00", ""]), leap=st.booleans())
def test_timestamps_are_rfc_3339_with_a_zone_in_range(stamp: datetime, zone: str, leap: bool) -> None:
    text = stamp.strftime("%Y-%m-%dT%H:%M:") + ("60" if leap else stamp.strftime("%S")) + zone
    text = f"{stamp.year:04d}" + text[text.index("-"):]
    try:
        parsed = field_time(text, "a time", EARLIEST, LATEST)
    except Malformed:
        return
    assert parsed is not None and parsed.tzinfo is not None and zone and EARLIEST <= parsed <= LATEST


@PROPERTY
@given(location=header_text | st.sampled_from(["http://[::1", "http://[", "//[x]", "https://a.example/x"]))
def test_a_redirect_location_is_a_url_text_or_malformed(location: str) -> None:
    with contextlib.suppress(Malformed):
        assert isinstance(redirect_target("https://opendsr.mparticle.com/v3/x", location), str)


@given(error=st.sampled_from([TypeError, AttributeError, KeyError, IndexError, RecursionError, OverflowError,
                              UnicodeEncodeError("utf-8", "\ud800", 0, 1, "x"), ZeroDivisionError, LookupError]))
def test_decode_turns_any_failure_of_a_reader_into_malformed_but_keeps_the_connectors_own(error: Any) -> None:
    def broken() -> None:
        raise error

    with pytest.raises(Malformed):
        decode(broken, "an answer")
    with pytest.raises(RetryLaterError):
        decode(lambda: (_ for _ in ()).throw(RetryLaterError("busy")), "an answer")


@PROPERTY
@given(text=st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=12)
       | st.text(max_size=12))
def test_data_with_lone_surrogates_is_repaired_and_answers_with_them_are_refused(text: str) -> None:
    raw = json.dumps({"attribute": [text]}).encode()  # escapes every surrogate as \udXXX
    repaired = json_body(raw, repair_text=True)["attribute"][0]
    repaired.encode("utf-8")  # always text that can be written
    standard = json.loads(raw)["attribute"][0]  # escaped pairs are joined: what stays a surrogate is alone
    alone = any(0xD800 <= ord(c) <= 0xDFFF for c in standard)
    assert (repaired == standard) is not alone
    if alone:
        with pytest.raises(Malformed):
            json_body(raw)


# -- the nesting pre-check: linear, whatever the bytes ------------------------------------------------------

#: The bytes the pre-check's state machine reacts to, and one it does not: any body is a word over these.
SCAN_ALPHABET = st.sampled_from([b'"', b"\\", b"[", b"]", b"{", b"}", b"a", b'\\"', b'"\\"'])


def containers(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(containers(v) for v in value.values())
    if isinstance(value, list):
        return 1 + sum(containers(v) for v in value)
    return 0


@PROPERTY
@given(parts=st.lists(SCAN_ALPHABET, max_size=400), repeat=st.integers(1, 50))
def test_the_pre_check_judges_any_body_of_n_bytes_in_at_most_n_plus_one_steps(parts: list[bytes],
                                                                               repeat: int) -> None:
    """Each step moves strictly forward from where the last ended (the one-byte search and the quote search are
    C loops over the bytes in between), so the cost is O(n): the steps are bounded by the bytes themselves."""
    data = b"".join(parts) * repeat
    shape = json_shape(data, max_depth=10**9, max_containers=10**9)
    assert shape.steps <= len(data) + 1


def reference_shape(data: bytes, max_depth: int, max_containers: int) -> tuple[int, int]:
    """The pre-check's definition, one byte at a time: strings skipped, brackets counted, stopping where a limit is
    exceeded, a closing bracket has nothing open or a string is unterminated."""
    depth = deepest = count = 0
    at = 0
    while at < len(data):
        byte = data[at:at + 1]
        if byte == b'"':
            at += 1
            while at < len(data) and data[at:at + 1] != b'"':
                at += 2 if data[at:at + 1] == b"\\" else 1
            if at >= len(data):
                break
        elif byte in (b"[", b"{"):
            depth, count = depth + 1, count + 1
            deepest = max(deepest, depth)
            if deepest > max_depth or count > max_containers:
                break
        elif byte in (b"]", b"}"):
            if depth == 0:
                break
            depth -= 1
        at += 1
    return deepest, count


@PROPERTY
@given(parts=st.lists(SCAN_ALPHABET | st.sampled_from([b"[" * 40, b"]" * 40, b"{}" * 30, b" ", b"1,"]), max_size=300),
       max_depth=st.integers(0, 50), max_containers=st.integers(0, 200))
def test_the_pre_check_agrees_with_its_byte_by_byte_definition_wherever_it_stops(
        parts: list[bytes], max_depth: int, max_containers: int) -> None:
    """Brackets between strings are summed in blocks; the figures must still be those of a walk one byte at a
    time, including on text that is not JSON and where a limit is exceeded part-way through a block."""
    data = b"".join(parts)
    shape = json_shape(data, max_depth=max_depth, max_containers=max_containers)
    assert (shape.depth, shape.containers) == reference_shape(data, max_depth, max_containers)


@PROPERTY
@given(value=json_values, key=st.text(alphabet='"\\[]{}ab', max_size=6))
def test_the_pre_check_reads_valid_json_as_the_parser_does(value: Any, key: str) -> None:
    """Brackets, quotes and backslashes inside strings (escaped any way) are text, not structure."""
    wrapped = {key: [value, key]}
    shape = json_shape(json.dumps(wrapped).encode(), max_depth=10**9, max_containers=10**9)
    assert (shape.depth, shape.containers) == (depth(wrapped), containers(wrapped))


@pytest.mark.parametrize("body", [
    b'"' + b'\\"' * 16_384,                        # one quote and escaped quotes: quadratic for the old regex
    b'[' * 32 + b'"' + b'\\"' * 16_384,            # the same past the quick count
    (b'[' * 32 + b'"\\"",' * 6_000) * 2,             # many short strings holding escaped quotes
])
def test_a_body_built_to_make_the_pre_check_backtrack_is_judged_at_once(body: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(Malformed):
        json_body(body)
    assert time.perf_counter() - started < 1.0  # the old regex took 5 s on 32 KB, 300 s on 1 MB


def test_a_megabyte_of_the_worst_bytes_for_the_pre_check_takes_well_under_a_second() -> None:
    body = b'[' * 33 + b'"' + b'\\"' * (MAX_CONTAINERS * 4)
    started = time.perf_counter()
    shape = json_shape(body)
    assert shape.depth > MAX_DEPTH
    shape = json_shape(body[33:] + b"]", max_depth=10**9)
    assert shape.steps > MAX_CONTAINERS  # it did walk every escaped quote
    assert time.perf_counter() - started < 2.0


def test_millions_of_empty_containers_are_refused_before_the_parser_allocates_them() -> None:
    body = b"[" + b"[]," * (4 * 1024 * 1024 // 3) + b"[]]"  # 4 MB: 1.4 million empty lists once parsed
    tracemalloc.start()
    try:
        with pytest.raises(Malformed, match="arrays and objects"):
            json_body(body, max_bytes=len(body))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert json_body(b"[" + b"[]," * (MAX_CONTAINERS - 2) + b"[]]") == [[]] * (MAX_CONTAINERS - 1)


@pytest.mark.parametrize("body", [
    b'["' + b"[" * 40 + b'\\"",' + b'"\\"",' * 200_000 + b'""]',  # one escaped quote in every string: odd steps
    b'["' + b'\\"' * 200_000 + b'"]',                              # one string of escaped quotes
])
def test_the_pre_check_looks_at_the_deadline_however_the_server_moves_its_step_count(body: bytes) -> None:
    """A check on exact multiples of the step count never ran when every step moved it by two; nor did one inside
    a single string of escaped quotes."""
    checks = []
    shape = json_shape(body, max_depth=10**9, max_containers=10**9, check=lambda: checks.append(1))
    assert shape.steps > 4 * CHECK_EVERY and len(checks) >= shape.steps // CHECK_EVERY - 1, (shape, len(checks))


def test_the_pre_check_stops_at_the_calls_deadline() -> None:
    body = b"[" + b'"\\"",' * 100_000 + b"[]," * 40 + b"1]"  # 200,000 steps, then the brackets
    with bounded(0.001) as deadline:
        time.sleep(0.01)
        with pytest.raises(OutOfTimeError):
            json_body(body)
    assert deadline.expired or deadline.remaining() <= 0


def test_a_body_sent_as_a_million_one_byte_chunks_costs_about_its_own_size() -> None:
    """The re-attack: a 1 MB answer in tiny HTTP chunks kept every chunk object (129 MB traced for one-byte
    chunks)."""
    class OneByteChunks:
        def iter_content(self, chunk_size: int) -> Iterator[bytes]:
            return (bytes(2) for _ in range(1 << 19))  # a new two-byte object each time, as urllib3 yields

    tracemalloc.start()
    try:
        body = bounded_body(OneByteChunks(), limit=2 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(body) == 1 << 20 and peak < 8 << 20, f"{peak / (1 << 20):.0f} MB"
