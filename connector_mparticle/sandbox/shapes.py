"""Shape variation: the sandbox answers in every shape mParticle's documents show, not in one tidy shape of its own.

A client tested only against one tidy shape can pass here and fail against a real workspace. With variation on,
each answer picks, deterministically from the seed and what it is about, among the forms the documents allow:

- timestamps (``developers/dsr-api/v3`` examples): no fractional digits (``2021-12-09T00:00:00Z``), three, six
  (``2021-09-07T10:00:00.322652Z``) or seven (``2021-11-29T18:16:24.5568051Z``); ``Z`` or ``+00:00`` (both
  ISO 8601 for UTC); and for a status's ``expected_completion_time`` also no zone at all, the form
  ``developers/dsr-api/v2`` documents for the same field (``2018-05-07T20:53:48.322652``, in UTC);
- optional members whose value is null either present as null (as the examples show) or absent;
- the order of the members of every JSON object (JSON objects are unordered, RFC 8259 section 4).

Stored-form event batches in access results (``static/downloads/portability-response-sample.zip``) are not a
variation: mParticle's results always hold them (:mod:`~connector_mparticle.sandbox.stored_batches`); variation
picks among their optional forms too.

Tidy (variation off) is the sandbox's historical shape: milliseconds and ``Z``, members as written, nulls
present. Choices never depend on thread timing: each is a hash of the seed and a key naming the answer (a
request's sequence number and status, an mpid, a field), so one seed reproduces a run. A time keeps the precision
it was given in every answer that repeats it (keyed by the request and the field, not the answer), as a value
mParticle stores and serialises would: a client that waits for the stated ``expected_completion_time`` is not
sent further ahead by a later answer that rounds the same time otherwise.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

__all__ = ["ENV_SEED", "ENV_SHAPES", "ShapeBook", "ShapeSettings", "Shapes", "default_settings"]

#: Environment variables that set the default of every sandbox started in this process (and its children):
#: ``vary`` or ``tidy``, and an integer seed. The pytest plugin sets them for a test session.
ENV_SHAPES = "MPARTICLE_SANDBOX_SHAPES"
ENV_SEED = "MPARTICLE_SANDBOX_SHAPE_SEED"
_DIGITS = (0, 3, 6, 7)
_ZONES = ("Z", "+00:00")
T = TypeVar("T")


@dataclass(frozen=True)
class ShapeSettings:
    """Whether answers vary, and the seed that decides how."""

    variation: bool = False
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"variation": self.variation, "seed": self.seed}


def default_settings() -> ShapeSettings:
    """The settings :data:`ENV_SHAPES` and :data:`ENV_SEED` give (tidy, seed 0, when unset or empty)."""
    mode = (os.environ.get(ENV_SHAPES) or "tidy").strip().lower()
    if mode not in ("vary", "tidy"):
        raise ValueError(f"{ENV_SHAPES} must be 'vary' or 'tidy', not {mode!r}")
    try:
        seed = int(os.environ.get(ENV_SEED) or "0")
    except ValueError:
        raise ValueError(f"{ENV_SEED} must be an integer") from None
    return ShapeSettings(mode == "vary", seed)


class Shapes:
    """The choices one set of :class:`ShapeSettings` makes."""

    def __init__(self, settings: ShapeSettings) -> None:
        self.settings = settings

    def number(self, *key: Any) -> int:
        """A 64-bit number for ``key`` and the seed (the same whether variation is on or off)."""
        text = repr((self.settings.seed, *key)).encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")

    def pick(self, options: Sequence[T], *key: Any) -> T:
        """One of ``options`` for ``key``; the first when variation is off."""
        if not self.settings.variation:
            return options[0]
        return options[self.number(*key) % len(options)]

    def timestamp(self, epoch: float | None, *key: Any, zoneless: bool = False, by: bool = False) -> str | None:
        """``epoch`` in ISO 8601 UTC in one of the documented forms (``zoneless``: the v2 form is allowed).

        Fewer digits cut the time short, except for a time something happens ``by`` (``expected_completion_time``,
        "the estimated time by which the request will be fulfilled"), which is rounded up so it stays honest."""
        if epoch is None:
            return None
        digits = self.pick((3, *(d for d in _DIGITS if d != 3)), *key, "digits")
        zone = self.pick((*_ZONES, "") if zoneless else _ZONES, *key, "zone")
        unit = 10 ** (7 - digits)  # OpenDSR's seven digits are 100 ns ticks
        ticks = math.ceil(epoch * 10_000_000 / unit) * unit if by else int(epoch * 10_000_000) // unit * unit
        seconds, fraction = divmod(ticks, 10_000_000)
        text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return text + (f".{fraction:07d}"[: digits + 1] if digits else "") + zone

    def drop_nulls(self, body: dict[str, Any], names: Iterable[str], *key: Any) -> dict[str, Any]:
        """``body`` without some of the members ``names`` whose value is null (none when variation is off)."""
        gone = {n for n in names if n in body and body[n] is None and self.pick((False, True), *key, "drop", n)}
        return {k: v for k, v in body.items() if k not in gone}

    def ordered(self, value: Any, *key: Any) -> Any:
        """``value`` with the members of every object in an order chosen for ``key`` (as is when off)."""
        if not self.settings.variation:
            return value
        return _shuffled(value, random.Random(self.number(*key, "order")))


def _shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


class ShapeBook:
    """The settings in force (the admin API can change them); owns its lock."""

    def __init__(self, settings: ShapeSettings) -> None:
        self._lock = threading.Lock()
        self._default = settings
        self._shapes = Shapes(settings)

    @property
    def current(self) -> Shapes:
        with self._lock:
            return self._shapes

    def update(self, variation: bool | None = None, seed: int | None = None) -> ShapeSettings:
        with self._lock:
            now = self._shapes.settings
            settings = ShapeSettings(now.variation if variation is None else variation,
                                     now.seed if seed is None else seed)
            self._shapes = Shapes(settings)
            return settings

    def reset(self) -> None:
        with self._lock:
            self._shapes = Shapes(self._default)
