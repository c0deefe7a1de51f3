"""How the framework's tools say things to people: durations in words."""

from __future__ import annotations

import math

__all__ = ["human_duration"]

_UNITS = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))


def human_duration(seconds: float) -> str:
    """``4 min 10 s``, ``2 d 3 h``, ``0.4 s``: the two largest units, rounded up so a wait is never understated."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    left = math.ceil(seconds)
    parts: list[str] = []
    for name, size in _UNITS:
        if left >= size or (name == "s" and not parts):
            parts.append(f"{left // size} {name}")
            left %= size
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if not p.startswith("0 ")) or "0 s"
