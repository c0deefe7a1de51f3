"""The secret rule against what actually goes on the wire and what is written after it ran.

Stated over generated input: for any key and secret, the Basic ``Authorization`` header value carrying them,
quoted by a server in hex, base64 (either alphabet, padded or not) or base32, anywhere in a text, leaks by the
rule and is withheld by :meth:`~dsr_framework.redact.Redactor.scrub`; and a string scrubbed for JSON never leaks
once ``json.dumps`` has written it, whatever control characters a server put next to a secret's characters.
Each of these failed before: the rule decoded no hex/base64/base32 text, did not know the header as a form, and
checked strings before ``json.dumps`` turned a TAB into backslash and ``t``.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector_mparticle.settings import AuthSettings
from dsr_framework.config import HostConfig
from dsr_framework.redact import LeakInOutput, Redactor
from dsr_framework.secret_matching import TOKENS_PER_SOURCE
from dsr_framework.text import for_people, json_for_people

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

URLSAFE = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=16, max_size=48)
KEYS = st.text("abcdef0123456789", min_size=4, max_size=20).map(lambda k: "wk" + k)
#: Text a server may put around what it quotes (no letters or digits next to the quote: see ``ADJACENT`` below).
AROUND = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)


def _b64(data: bytes, urlsafe: bool, padded: bool) -> str:
    text = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return text if padded else text.rstrip("=")


ENCODERS: dict[str, Callable[[bytes], str]] = {
    "hex": lambda b: b.hex(), "HEX": lambda b: b.hex().upper(),
    "base64": lambda b: _b64(b, False, True), "base64-unpadded": lambda b: _b64(b, False, False),
    "base64url": lambda b: _b64(b, True, True), "base64url-unpadded": lambda b: _b64(b, True, False),
    "base32": lambda b: base64.b32encode(b).decode(),
}


def _header(key: str, secret: str) -> str:
    return AuthSettings("basic", key=key, secret=secret).wire_secrets()[0]


def _redactor(key: str, secret: str) -> Redactor:
    auth = AuthSettings("basic", key=key, secret=secret)
    return Redactor([*auth.secrets(), *auth.wire_secrets()])


@PROPERTY
@given(KEYS, URLSAFE, st.sampled_from(sorted(ENCODERS)), AROUND, AROUND, st.sampled_from(["", "x", "Zq", "7"]))
def test_the_authorization_header_in_another_encoding_leaks_and_is_withheld(
        key: str, secret: str, encoding: str, before: str, after: str, adjacent: str) -> None:
    """``adjacent``: a letter or digit glued to the encoded value, which shifts where a decoder would start."""
    redactor = _redactor(key, secret)
    quoted = ENCODERS[encoding](_header(key, secret).encode())
    text = f"{before} malformed Authorization header ({adjacent}{quoted}) {after}"
    assert redactor.leaks(text), encoding
    scrubbed = redactor.scrub(text)
    assert quoted not in scrubbed and not redactor.leaks(scrubbed)


@PROPERTY
@given(KEYS, URLSAFE, st.sampled_from(sorted(ENCODERS)))
def test_the_encoded_secret_itself_leaks(key: str, secret: str, encoding: str) -> None:
    assert _redactor(key, secret).leaks("trace=" + ENCODERS[encoding](secret.encode()))


@PROPERTY
@given(URLSAFE, st.data())
def test_a_scrubbed_string_does_not_leak_as_json_or_a_terminal_writes_it(secret: str, data: st.DataObject) -> None:
    """A server sends a control character followed by seven characters of the secret, where the secret's own
    character is the letter ``json.dumps`` writes for that control (``\\t``, ``\\n``, ``\\r``, ``\\b``, ``\\f``):
    before, the string passed the rule and the written JSON held eight characters of the secret."""
    redactor = Redactor([secret])
    start = data.draw(st.integers(0, len(secret) - 8), label="start")
    control = data.draw(st.sampled_from("\t\n\r\b\f\x00\x1f"), label="control")
    text = data.draw(AROUND, label="before") + control + secret[start + 1:start + 8] + data.draw(AROUND)
    value = redactor.scrub_json({"nickname": text, text: [text]})
    for ascii_only in (True, False):
        assert not redactor.leaks(json.dumps(value, ensure_ascii=ascii_only))
    message = redactor(text)  # a message: shown to a person, or as JSON on the terminal
    assert not redactor.leaks(for_people(message)) and not redactor.leaks(json_for_people({"message": message}))


def test_the_final_bytes_are_checked_before_a_file_is_written() -> None:
    secret = "Zq8vLm3pXr7tWc2nT1McvlSw"
    redactor = Redactor([secret])
    k = secret.index("t")
    value = "\t" + secret[k + 1:k + 8]  # seven characters: not a leak as it is
    assert not redactor.leaks(value)
    written = json.dumps({"nickname": value}).encode()  # the TAB written as backslash and "t": eight now
    with pytest.raises(LeakInOutput):
        redactor.written(written, "the summary")
    assert redactor.written(b'{"plan": "pro"}', "the summary") == b'{"plan": "pro"}'


def test_a_long_access_token_is_registered_in_a_fraction_of_a_second() -> None:
    """Before: a regular-expression trie of every run; 16384 characters took 11 to 15 seconds and 200 MB."""
    redactor = Redactor([secrets.token_urlsafe(32)])
    token = secrets.token_urlsafe(12288)[:16384]
    started = time.process_time()
    redactor.register(token, rotating=True, source="a", expires_at=time.monotonic() + 3600)
    assert time.process_time() - started < 3.0
    assert redactor.leaks(f"Bearer …{token[9000:9008]}…") and not redactor.leaks("x" * 20000)


def test_a_valid_token_of_one_source_outlives_any_number_of_tokens_of_another() -> None:
    """Before: only the four most recent tokens across all sources were kept; a source that fetched new tokens
    (a 401 each time) made the redactor forget another source's token still in use."""
    redactor = Redactor()
    later = time.monotonic() + 3600
    token_a = "tokA-" + secrets.token_urlsafe(30)
    redactor.register(token_a, rotating=True, source=("https://a/oauth", "client-a", "aud"), expires_at=later)
    for _ in range(4 * TOKENS_PER_SOURCE):
        redactor.register("tokB-" + secrets.token_urlsafe(30), rotating=True,
                          source=("https://a/oauth", "client-b", "aud"), expires_at=later)
    assert redactor.leaks(f"you sent Authorization: Bearer {token_a}")


def test_expired_tokens_are_dropped_but_a_source_keeps_its_last() -> None:
    redactor = Redactor()
    old, current = "tok-" + secrets.token_urlsafe(24), "tok-" + secrets.token_urlsafe(24)
    redactor.register(old, rotating=True, source="a", expires_at=time.monotonic() - 1)
    redactor.register(current, rotating=True, source="b", expires_at=time.monotonic() - 1)
    redactor.register("tok-" + secrets.token_urlsafe(24), rotating=True, source="a", expires_at=time.monotonic() + 60)
    assert not redactor.leaks(old)  # expired, and source a holds a newer one
    assert redactor.leaks(current)  # expired, but source b may send it until it fetches the next


def test_no_private_part_of_the_redactor_prints_a_secret() -> None:
    secret = secrets.token_urlsafe(24)
    redactor = Redactor([secret])
    redactor.register("tok-" + secrets.token_urlsafe(24), rotating=True, source="a")
    compiled = redactor._compiled
    shown = repr(redactor) + repr(compiled.lasting) + "".join(repr(t) for ts in compiled.rotating.values() for t in ts)
    assert not redactor.leaks(shown) and secret[:8] not in shown


def test_an_unknown_key_of_a_host_entry_is_counted_never_quoted(caplog: pytest.LogCaptureFixture) -> None:
    """A key can be a value typed in the wrong place: before, the message quoted it (a secret, here)."""
    secret = "Zx9Q" + secrets.token_urlsafe(24)
    with caplog.at_level(logging.DEBUG), pytest.raises(ValueError) as raised:
        HostConfig.from_dict({"connectors": {"mparticle": {"enabled": True, "config": {}, secret: 1}}})
    shown = str(raised.value) + caplog.text
    assert "1 unknown key" in shown and secret[:8] not in shown


def test_large_input_counts_sixteen_characters_so_random_data_never_matches_by_chance() -> None:
    """A results archive is checked with :meth:`Redactor.holds_part`: 16 characters of a form, not 8, since
    megabytes of random-looking data (push tokens, ids) hold some 8-character run of some form now and then."""
    secret = secrets.token_urlsafe(32)
    redactor = Redactor([secret, "wk" + secrets.token_hex(8)])
    assert redactor.holds_part(f"note: {secret[5:21]}.") and not redactor.holds_part(f"note: {secret[5:20]}.")
    assert redactor.holds_part(secret[::-1][3:19]) and redactor.holds_part(secret.encode().hex()[6:40])
    data = "\n".join(secrets.token_urlsafe(48) for _ in range(30_000))  # 2 MB of random base64
    assert not redactor.holds_part(data)
