"""The one rule for secrets in outgoing text (``dsr_framework.redact``), stated over generated input.

For generated secrets (random tokens, regex metacharacters, non-ASCII) and generated texts holding a run of
eight or more of their characters in any encoding a server might echo (verbatim, case-changed, JSON, URL and
HTML escapes, every character escaped, base64 at any alignment, hex, reversed, invisible characters between
the characters), the rule finds it; what :meth:`Redactor.scrub` returns holds no trace by a detector written
independently, never leaks by the rule itself, and scrubbing again changes nothing.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dsr_framework.models import AuditEvent, Result
from dsr_framework.outgoing import clean_result
from dsr_framework.redact import MASK, WITHHELD, Redactor, _written_forms
from tests.support.secrets import ENCODINGS, NOISE, SECRETS, echoes, traces

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.data(), SECRETS, st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=4, max_size=12))
def test_an_echo_of_a_secret_in_any_encoding_is_found_and_cut_out(data: st.DataObject, secret: str, key: str) -> None:
    redactor = Redactor([key, secret])
    encoding, text = data.draw(echoes(secret), label="echo")
    assert redactor.leaks(text), encoding
    scrubbed = redactor.scrub(text)
    assert not traces(scrubbed, secret), (encoding, scrubbed)
    assert not redactor.leaks(scrubbed)
    assert redactor.scrub(scrubbed) == scrubbed


@PROPERTY
@given(st.data(), SECRETS, SECRETS)
def test_two_secrets_split_across_two_fields_are_each_cut_out(data: st.DataObject, first: str, second: str) -> None:
    redactor = Redactor([first, second])
    document = {data.draw(echoes(first))[1]: [data.draw(echoes(second))[1], {"k": data.draw(echoes(first))[1]}]}
    scrubbed = json.dumps(redactor.scrub_json(document))
    assert not traces(scrubbed, first) and not traces(scrubbed, second)


@PROPERTY
@given(SECRETS, NOISE, NOISE)
def test_text_without_a_run_of_the_secret_is_left_as_it_is(secret: str, before: str, after: str) -> None:
    redactor = Redactor([secret])
    text = before + secret[:7] + after  # seven characters are not a trace
    # ... unless writing the text (as JSON, or for a person) adds the eighth: '000000"' is written '000000\"'
    if not redactor.leaks(text) and not any(redactor.leaks(form) for form in _written_forms(text)):
        assert redactor.scrub(text) == text


@PROPERTY
@given(st.text(st.characters(codec="ascii", categories=("L", "N")), min_size=4, max_size=7), NOISE)
@example("abcd", "xABCDx")
def test_a_secret_shorter_than_a_run_is_hidden_whole(secret: str, noise: str) -> None:
    redactor = Redactor([secret])
    scrubbed = redactor.scrub(noise + secret + noise)
    assert secret.lower() not in scrubbed.lower()


def test_a_secret_made_of_the_masks_own_characters_still_never_leaks() -> None:
    redactor = Redactor(["********x", "***"])
    for text in ("********x", "**** ****x", "x********", "*" * 30):
        assert not redactor.leaks(redactor.scrub(text))
    assert redactor.scrub("the credential") == "the credential"  # the mask and WITHHELD are not secrets here
    assert WITHHELD != MASK


def test_a_dotted_capital_i_before_a_secret_does_not_shift_the_cut() -> None:
    """``"İ".lower()`` is two characters; a fold that is not character for character would cut the wrong span."""
    secret = "Zq8vLm3pXr7tWc2n"
    text = "İ" * 5 + secret + " end"
    assert Redactor([secret]).scrub(text) == "İ" * 5 + MASK + " end"


def test_a_secret_in_a_key_and_in_a_value_is_cut_from_both() -> None:
    secret = "Zq8vLm3pXr7tWc2n"
    scrubbed = Redactor([secret]).scrub_json({f"key-{secret[2:12]}": [f"v {secret[::-1]}"]})
    assert not traces(json.dumps(scrubbed), secret)


def test_every_encoding_the_tests_generate_is_one_the_rule_names() -> None:
    secret = "Zq8vLm3pXr7tWc2n/+=é"
    redactor = Redactor([secret])
    for name, encode in ENCODINGS.items():
        assert redactor.leaks(encode(secret, 1)), name


@settings(max_examples=40, deadline=None)
@given(st.data(), SECRETS)
def test_a_result_cleaned_for_the_host_holds_no_trace_anywhere(data: st.DataObject, secret: str) -> None:
    redactor = Redactor([secret])
    echo = data.draw(echoes(secret))[1]
    result = Result("r-1", "deletion", "pending", f"server said {echo}", state={"receipt": {"body": echo, echo: 1}},
                    audit=(AuditEvent(echo, echo, {"detail": [echo]}),), summary={"note": echo},
                    next_check_at=AuditEvent("a", "b").at)
    cleaned = clean_result(result, redactor)
    assert not traces(json.dumps(cleaned.to_dict()), secret)
    assert clean_result(cleaned, redactor) == cleaned  # idempotent: a state signed after scrubbing still verifies


def test_a_traceback_logged_through_the_redacting_logger_is_redacted_too(caplog: Any) -> None:
    import logging

    from dsr_framework.redact import RedactingLogger

    secret = "Zq8vLm3pXr7tWc2n"
    log = RedactingLogger(logging.getLogger("tests.redaction"), Redactor([secret]))
    try:
        raise ValueError(f"server said {secret[1:]}") from KeyError(secret.encode().hex())
    except ValueError:
        with caplog.at_level(logging.ERROR):
            log.exception("failed: %s", secret[::-1])
    [record] = caplog.records
    text = record.getMessage() + (record.exc_text or "")
    assert "ValueError" in text and "KeyError" in text and not traces(text, secret)


def test_rotating_secrets_are_bounded_per_source_and_lasting_ones_are_kept() -> None:
    from dsr_framework.secret_matching import TOKENS_PER_SOURCE

    lasting = "Zq8vLm3pXr7tWc2n"
    redactor = Redactor([lasting])
    later = time.monotonic() + 3600
    tokens = [secrets.token_urlsafe(24) for _ in range(TOKENS_PER_SOURCE + 3)]
    for token in tokens:
        redactor.register(token, rotating=True, source="client-a", expires_at=later)
    assert redactor.leaks(f"x {lasting[2:12]} y")
    assert all(redactor.leaks(token) for token in tokens[-TOKENS_PER_SOURCE - 1:])
    assert not redactor.leaks(tokens[0])  # replaced by many since: the source no longer sends it
