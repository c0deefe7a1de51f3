"""Everyone a check involves: the subject of a request and the people who are not, as the oracle sees them.

A request for one person may change that person in one way only (a deletion erases them, an opt-out records
their opt-out, an access changes nothing) and nobody else in any way. :class:`Standing` is what the oracle says
about one person at one moment; :func:`harm` compares two of them and names what a request did that it must
not. :func:`foreign_values` is what of another person's data may not appear in this person's export.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dsr_framework.conformance.target import Oracle

__all__ = ["MIN_FOREIGN", "Seeded", "Standing", "foreign_values", "harm", "label", "standing"]

#: A value of someone else's this short could be an ordinary word of an export; it is not looked for.
MIN_FOREIGN = 4

Ask = Callable[..., Any]


@dataclass(frozen=True)
class Standing:
    """What the oracle says about one person: there or not, opted out (per regulation), the data held."""

    exists: bool
    opted_out: tuple[tuple[str, bool], ...]
    held: tuple[str, ...]


@dataclass
class Seeded:
    """What the oracle says about everyone right after ``prepare()``: settled once two answers agree."""

    standings: dict[int, Standing] | None = None
    settled: bool = False
    varies: bool = False

    def saw(self, standings: dict[int, Standing]) -> None:
        """Another reading right after ``prepare()``."""
        if self.varies or self.settled:
            return
        if self.standings is None:
            self.standings = dict(standings)
        elif self.standings == standings:
            self.settled = True
        else:
            self.varies = True  # prepare() seeds differently each time: ask every time


def standing(ask: Ask, oracle: Oracle, subject: Mapping[str, str], regulations: Sequence[str]) -> Standing:
    """The oracle's answers about ``subject`` now (``ask`` runs the target's code as trusted code)."""
    exists = bool(ask(oracle.exists, subject))
    opted = tuple((r, bool(ask(oracle.opted_out, subject, r))) for r in regulations)
    held = tuple(sorted(str(v) for v in ask(oracle.held_data, subject)))
    return Standing(exists, opted, held)


def label(subject: Mapping[str, str], index: int) -> str:
    """How a message names a person without showing their data: ``bystanders[0]`` and the like."""
    return f"bystanders[{index}] ({', '.join(sorted(subject))})"


def harm(before: Standing, after: Standing, allowed: str | None) -> str | None:
    """What changed for a person that the request may not change (None: nothing).

    ``allowed`` is the kind of request naming this person (``deletion``: anything may change; ``opt_out``:
    the opt-out), or None for everyone else, for whom nothing may change.
    """
    if allowed == "deletion" or before == after:
        return None
    if before.exists != after.exists:
        return "erased" if before.exists else "created"
    if allowed == "opt_out":  # recording the opt-out writes about the person: only their existence is judged
        return None
    if before.opted_out != after.opted_out:
        return "opted out" if any(o for _, o in after.opted_out) else "had an opt-out withdrawn"
    return "had their data changed"


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def foreign_values(own: Iterable[str], own_identities: Mapping[str, str],
                   others: Iterable[tuple[Mapping[str, str], Collection[str]]]) -> list[str]:
    """Other people's identities and held values that may not appear in an export for this person.

    A value the person shares (their own data or identities hold it, in any case) or one shorter than
    :data:`MIN_FOREIGN` characters is left out: it can appear in an honest export.
    """
    mine = " \n ".join(_as_text(v) for v in [*own, *own_identities.values()]).lower()
    found: dict[str, None] = {}
    for identities, held in others:
        for value in [*identities.values(), *(_as_text(v) for v in held)]:
            if len(value) >= MIN_FOREIGN and value.lower() not in mine:
                found[value] = None
    return list(found)
