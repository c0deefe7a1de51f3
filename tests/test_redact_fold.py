# ruff: noqa: RUF001, RUF002 - the Greek and Turkish letters are what these tests are about
"""The redactor's scan, made fast, still means what its definition says: folding is character by character, and
the windows it finds are every window that is a run (``dsr_framework/redact.py``, ``_fold`` and ``_hits``); and a
long file checked in blocks is refused whenever the whole file would be (``flows/writing.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from connector_mparticle.errors import UnsafeResponseError
from connector_mparticle.files import Folder
from connector_mparticle.flows.writing import CheckedStream
from dsr_framework.redact import Redactor
from dsr_framework.secret_matching import _HEX_RUN, FRAGMENT_LENGTH, _all_runs, _fold, _hits

PROPERTY = settings(max_examples=400, deadline=None, derandomize=True)
#: Letters whose lower case is special (İ: two characters; Σ: final form in str.lower), and ordinary ones.
TRICKY = st.text(alphabet=st.sampled_from("İΣσςAaBbİIıK\u212a ßẞ-0123456789abcdef") | st.characters(), max_size=80)


def per_character(text: str) -> str:
    """Each character's own lower case where it is one character (else the character itself); both sigmas as one,
    and Turkish dotted capital and dotless small i as i."""
    folded = "".join(low if len(low := c.lower()) == 1 else c for c in text)
    return folded.replace("ς", "σ").replace("İ", "i").replace("ı", "i")


@PROPERTY
@given(text=TRICKY)
@example(text="ΑΣ ΑΣΒ İΣ")
def test_folding_is_character_by_character_and_keeps_every_position(text: str) -> None:
    folded = _fold(text)
    assert folded == per_character(text) and len(folded) == len(text)


def every_window(folded: str, runs: frozenset[str], length: int) -> set[str]:
    return {folded[i:i + length] for i in range(len(folded) - length + 1)} & runs


@PROPERTY
@given(secret=st.text(alphabet="abcdef0123-", min_size=FRAGMENT_LENGTH, max_size=24),
       filler=st.text(alphabet="abcdef0123- x", max_size=60), cuts=st.lists(st.integers(0, 24), max_size=4),
       length=st.sampled_from([FRAGMENT_LENGTH, _HEX_RUN]))
def test_the_windows_found_are_every_window_that_is_a_run(secret: str, filler: str, cuts: list[int],
                                                          length: int) -> None:
    """Pieces of the secret at every offset in text made of the same characters: the sampled search must find
    exactly what looking at every window finds (the whole set: the redactor cuts each one out)."""
    runs = _all_runs([secret], length)
    grams = _all_runs(runs, length // 2)
    text = filler + "".join(secret[c:] + filler[: c % 7] for c in cuts) + secret[: len(secret) // 2]
    assert _hits(text, runs, grams, length, False) == every_window(text, runs, length)
    assert bool(_hits(text, runs, grams, length, True)) == bool(every_window(text, runs, length))


def test_a_secret_ending_in_a_capital_sigma_is_found_whatever_follows_it() -> None:
    """str.lower writes a final sigma only at the end of a word: folded that way, a short secret (matched whole)
    and the text holding it would differ by what comes after the secret."""
    redactor = Redactor(["ΘΗΡΑΣ"])
    assert redactor.leaks("pin=ΘΗΡΑΣ") and redactor.leaks("pin=ΘΗΡΑΣΔ") and redactor.leaks("pin=θηρασ")
    assert "ΘΗΡΑΣ" not in redactor.scrub("a ΘΗΡΑΣΔ b")


def test_a_piece_of_a_greek_secret_lower_cased_where_a_word_ended_is_found() -> None:
    """str.lower puts the final sigma at the end of the whole secret only; a piece of it lower-cased on its own
    ends in the final form where the secret has the ordinary one."""
    assert Redactor(["ΚΛΕΙΔΙΣΜΟΣΑΣΦΑΛΕΙΑΣ"]).leaks("ειδισμος")


@pytest.mark.parametrize("echo", [
    "invalid key 5a71372178 given",                                     # a short secret in hex, alone in ASCII
    "invalid key " + "".join(f"\\{ord(c):03o}" for c in "Zq7!x") + " given",  # C's octal escapes
    "invalid key " + "".join(c + "\u0336" for c in "Zq7!x") + " given",   # a strike-through over each character
    "invalid key " + "".join(c + "\u20dd" for c in "Zq7!x") + " given",   # an enclosing circle over each one
])
def test_a_short_secret_is_found_in_hex_octal_escapes_or_under_combining_marks(echo: str) -> None:
    assert Redactor(["Zq7!x"]).leaks(echo) and "Zq7" not in Redactor(["Zq7!x"]).scrub(echo)


SECRET = "ws-Q8+T3-kLm9"  # a "+": the reduced form reads it as a space
PADDING = st.sampled_from(["\\u200b", "&#8203;", "%E2%80%8B", "\u200b", "\r\n", "\\u00ad"])
PIECES = st.lists(st.one_of(st.sampled_from(list(SECRET)), PADDING, st.sampled_from(["x", "{}", '","'])),
                  max_size=120)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(rows=st.lists(PIECES.map("".join), min_size=1, max_size=12), block=st.integers(8, 64),
       overlap=st.integers(16, 32))
@example(rows=["x" * 40 + "".join(c + "\\u200b" * 9 for c in SECRET[:7]), SECRET[7:] + "x"], block=48, overlap=16)
def test_a_file_written_in_checked_blocks_is_refused_whenever_the_whole_file_leaks(
        tmp_path_factory: pytest.TempPathFactory, rows: list[str], block: int, overlap: int) -> None:
    """Whatever padding a server puts between a secret's characters (zero-width spaces, escaped any way), and
    wherever the blocks end, the stream refuses a file the rule finds a secret in, read whole as it would be
    written."""
    redactor = Redactor([SECRET])
    whole = "".join(rows)
    folder_path = tmp_path_factory.mktemp("stream")
    with Folder.open(str(folder_path)) as folder:
        staged = folder.stage("big.txt")
        try:
            with CheckedStream(redactor, staged, "a file", block_bytes=block, overlap_chars=overlap) as stream:
                for row in rows:
                    stream.write(row.encode())
            refused = False
        except UnsafeResponseError:
            refused = True
        finally:
            staged.discard()
    if redactor.leaks(whole):
        assert refused, whole


@pytest.mark.parametrize("encode", [
    lambda text: "".join(f"\\u{ord(c):04x}" for c in text),            # JSON escapes, every character
    lambda text: "".join(f"%{ord(c):02X}" for c in text),                # percent, every character
    lambda text: "".join(f"&#{ord(c)};" for c in text),                  # HTML references
    lambda text: "\u200b".join(text),                                    # a zero-width space between each
])
def test_a_large_input_holding_a_whole_credential_escaped_is_judged_to_hold_it(encode: Any) -> None:
    """The re-attack: a results archive is judged by runs of 16 without binary decodings, and a secret written
    wholly as escapes passed, then lay in the archive handed to the subject."""
    secret = "sbx-ws-Q8vT3nLp6Rz2Xk9M"
    line = '{"user_attributes": {"note": "' + encode(secret) + '"}}'
    assert Redactor([secret]).holds_part(line)
    assert not Redactor([secret]).holds_part(line.replace(encode(secret), encode("nothing secret in here")))


def test_a_secret_upper_cased_in_a_turkish_locale_is_found() -> None:
    """Java's toUpperCase() in a Turkish locale writes i as İ and lower-cases I as ı."""
    redactor = Redactor(["qixwivkeimzpiqtw"])
    assert redactor.leaks("key QİXWİVKEİMZPİQTW refused") and redactor.leaks("key qıxwıvkeımzpıqtw")
