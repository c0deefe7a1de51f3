# ruff: noqa: RUF001 - the Greek and Turkish letters are what these tests are about
"""The redactor's scan, made fast, still means what its definition says: folding is character by character, and
the windows it finds are every window that is a run (``dsr_framework/redact.py``, ``_fold`` and ``_hits``)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from dsr_framework.redact import _HEX_RUN, FRAGMENT_LENGTH, Redactor, _all_runs, _fold, _hits

PROPERTY = settings(max_examples=400, deadline=None, derandomize=True)
#: Letters whose lower case is special (İ: two characters; Σ: final form in str.lower), and ordinary ones.
TRICKY = st.text(alphabet=st.sampled_from("İΣσςAaBbİIıK\u212a ßẞ-0123456789abcdef") | st.characters(), max_size=80)


def per_character(text: str) -> str:
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


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
