"""The JSON pre-check: the nesting depth and container count of a JSON text, found in one forward pass before
the parser runs (:func:`json_shape`), so :func:`~connector_mparticle.http.answers.json_body` refuses a body
nested too deep or holding too many arrays and objects before parsing would recurse or allocate for it.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import accumulate
from typing import NamedTuple

__all__ = ["CHECK_EVERY", "JsonShape", "json_shape"]

MAX_DEPTH = 32  #: mParticle's answers nest 4 levels, an event batch about 6
#: Arrays and objects in one JSON text. A profile with every audience and attribute holds a few thousand, a
#: 128 KB event batch (the Events API's limit) at most 65,536; 100,000 empty ones take about 10 MB once parsed.
MAX_CONTAINERS = 100_000
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")  #: deleted before the brackets are walked
_DELTA = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_BRACKET_BLOCK = 1 << 16  #: brackets summed at once (bounds the list of levels)
_BACKSLASH, _OPENERS = ord("\\"), b"[{"
CHECK_EVERY = 16_384  #: scan steps between two deadline checks (a few milliseconds)


class JsonShape(NamedTuple):
    """What :func:`json_shape` saw: the deepest nesting and the number of containers, up to where it stopped,
    and how many steps the scan took (each step moves strictly forward; see :func:`json_shape`)."""

    depth: int
    containers: int
    steps: int


def json_shape(data: bytes, max_depth: int = MAX_DEPTH, max_containers: int = MAX_CONTAINERS,
               check: Callable[[], None] = lambda: None) -> JsonShape:
    """The nesting depth and container count of the JSON text ``data``, strings skipped, in one forward pass;
    it stops as soon as either exceeds its limit (so the answer then says "over", not by how much).

    Each step starts where the last one ended: the brackets up to the next quote (text with no string in it) are
    walked together by :func:`_brackets`, in C; then the string that quote opens is skipped: its end is the next
    quote, unless an odd run of backslashes precedes it (counted in the bytes since the previous quote only). So
    every byte is read a bounded number of times and the steps are at most ``len(data) + 1``: linear, whatever
    the bytes. ``check`` (the call's deadline) runs once :data:`CHECK_EVERY` steps have passed since it last ran, and
    after every block of brackets.
    For text that is not JSON any answer is fine: the parser refuses it before it nests deeper than the text's
    valid prefix, which this scan reads exactly as the parser does.
    """
    walk = _Walk(max_depth, max_containers, check)
    steps = pos = 0
    due = CHECK_EVERY  # a threshold, not a multiple: the server decides by how much each step moves the count
    while True:
        steps += 1
        if steps >= due:
            check()
            due = steps + CHECK_EVERY
        quote = data.find(b'"', pos)
        if not walk.brackets(data, pos, quote if quote >= 0 else len(data)) or quote < 0:
            break
        pos, escaped = _string_end(data, quote + 1, check)
        steps += escaped
        if pos < 0:  # an unterminated string: not JSON
            break
    return JsonShape(walk.deepest, walk.containers, steps)


class _Walk:
    """The depth, deepest depth and container count of the brackets walked so far (:func:`json_shape`)."""

    def __init__(self, max_depth: int, max_containers: int, check: Callable[[], None]) -> None:
        self.depth = self.deepest = self.containers = 0
        self.max_depth, self.max_containers, self.check = max_depth, max_containers, check

    def brackets(self, data: bytes, start: int, end: int) -> bool:
        """Walk the brackets of ``data[start:end]`` (which holds no string); False where the scan stops: a limit
        exceeded, or a closing bracket with nothing open (not JSON). Blocks of brackets are summed in C
        (:func:`itertools.accumulate`); a block that would stop is walked again one bracket at a time, so the
        figures are those at the bracket where it stops. The text is taken a block's length at a time, so the
        copies made stay small whatever its length."""
        for at in range(start, end, _BRACKET_BLOCK):
            block = data[at:min(at + _BRACKET_BLOCK, end)].translate(None, _NOT_BRACKETS)
            levels = list(accumulate(map(_DELTA.__getitem__, block), initial=self.depth))
            opened = len(block) - block.count(b"]") - block.count(b"}")
            if min(levels) < 0 or max(levels) > self.max_depth or self.containers + opened > self.max_containers:
                return self._one_by_one(block)
            self.depth, self.deepest, self.containers = levels[-1], max(self.deepest, *levels), self.containers + opened
            self.check()
        return True

    def _one_by_one(self, block: bytes) -> bool:
        for byte in block:
            if byte in _OPENERS:
                self.depth, self.containers = self.depth + 1, self.containers + 1
                self.deepest = max(self.deepest, self.depth)
                if self.deepest > self.max_depth or self.containers > self.max_containers:
                    return False
            elif self.depth == 0:
                return False
            else:
                self.depth -= 1
        return True


def _string_end(data: bytes, start: int, check: Callable[[], None]) -> tuple[int, int]:
    """Just past the closing quote of the string whose text begins at ``start`` (-1 if it has none), and how
    many escaped quotes were stepped over on the way (``check`` runs every :data:`CHECK_EVERY` of them: one
    string may hold a million)."""
    pos = start
    escaped = 0
    while True:
        if escaped and escaped % CHECK_EVERY == 0:
            check()
        quote = data.find(b'"', pos)
        if quote < 0:
            return -1, escaped
        if data[quote - 1] != _BACKSLASH:  # the common case: no escape before the quote
            return quote + 1, escaped
        segment = data[pos:quote]  # since the previous quote: the slices are disjoint, so linear in all
        if (len(segment) - len(segment.rstrip(b"\\"))) % 2 == 0:
            return quote + 1, escaped
        pos, escaped = quote + 1, escaped + 1
