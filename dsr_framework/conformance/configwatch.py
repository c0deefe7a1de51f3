"""Which settings a connector reads, compared with the settings its credentials schema declares.

A setting the schema does not declare is one no operator can see, validate or set on purpose: a hidden switch
(``config.get("verify_tls", True)``), a misspelling that silently falls back to a default. The harness hands
the hooks an :class:`ObservedConfig`: a ``dict`` equal to the settings (nested objects too) that records every
key looked up (``[]``, ``get``, ``in``, ``setdefault``, ``pop``) which the schema does not declare at that place.
A place whose schema allows any key (``additionalProperties`` true or a schema, ``patternProperties``, or no
``properties`` at all) accepts any key. Reading every item (iteration, ``items()``, ``json.dumps``) reveals
no particular key and is not judged; nor is a plain copy (``dict(config)``), which reads nothing by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dsr_framework.validation import schema_nodes

__all__ = ["ANY", "ObservedConfig", "declared_keys", "undeclared_in"]

Path = tuple[str, ...]
ANY = "*"  #: a path step where any key is declared (a map's values, an array's items)
Declared = dict[Path, frozenset[str] | None]  # None: any key is declared there


def declared_keys(schema: Mapping[str, Any]) -> Declared:
    """For each place in the settings (a path of names, :data:`ANY` for any), the keys the schema declares.

    ``None`` where any key is declared: the schema allows extra keys there (``additionalProperties`` true or a
    schema, ``patternProperties``), or names none (every branch of a ``oneOf`` counts).
    """
    names: dict[Path, set[str]] = {}
    free: set[Path] = set()
    for path, chain in schema_nodes(schema):
        named, takes_any = _place(chain)
        names.setdefault(path, set()).update(named)
        if takes_any:
            free.add(path)
    return {path: None if path in free or not keys else frozenset(keys) for path, keys in names.items()}


def _place(chain: list[Any]) -> tuple[set[str], bool]:
    """The property names a chain of subschemas declares, and whether it takes other keys too."""
    nodes = [node for node in chain if isinstance(node, Mapping)]
    named = {name for node in nodes for name in node.get("properties") or {}}
    takes_any = any(node.get("additionalProperties") not in (None, False) or node.get("patternProperties")
                    for node in nodes)
    return named, takes_any


class ObservedConfig(dict[str, Any]):
    """The settings, recording each undeclared key a connector looks up (in :attr:`undeclared`, shared by the
    nested objects and by copies)."""

    def __init__(self, data: Mapping[str, Any], declared: Declared, path: Path = (),
                 undeclared: list[str] | None = None) -> None:
        self._declared, self._path = declared, path
        self.undeclared: list[str] = [] if undeclared is None else undeclared
        super().__init__({key: self._wrap(key, value) for key, value in data.items()})

    def _child(self, key: str) -> Path:
        return (*self._path, ANY if self._declared.get(self._path, frozenset()) is None else key)

    def _wrap(self, key: str, value: Any) -> Any:
        if isinstance(value, Mapping):
            return ObservedConfig(value, self._declared, self._child(key), self.undeclared)
        if isinstance(value, list):
            inner = (*self._child(key), ANY)
            return [ObservedConfig(v, self._declared, inner, self.undeclared) if isinstance(v, Mapping) else v
                    for v in value]
        return value

    def _looked_up(self, key: object) -> None:
        keys = self._declared.get(self._path, frozenset())
        if keys is not None and key not in keys:
            where = ".".join((*self._path, str(key)))
            if where not in self.undeclared:
                self.undeclared.append(where)

    def __getitem__(self, key: str) -> Any:
        self._looked_up(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._looked_up(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._looked_up(key)
        return super().__contains__(key)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._looked_up(key)
        return super().setdefault(key, default)

    def pop(self, key: str, *default: Any) -> Any:
        self._looked_up(key)
        return super().pop(key, *default)

    def __copy__(self) -> ObservedConfig:
        return ObservedConfig(self, self._declared, self._path, self.undeclared)

    def __deepcopy__(self, memo: dict[int, Any]) -> ObservedConfig:
        import copy

        return ObservedConfig(copy.deepcopy(dict(self), memo), self._declared, self._path, self.undeclared)


def undeclared_in(config: Mapping[str, Any], declared: Declared, path: Path = ()) -> list[str]:
    """The keys of ``config`` (at any depth) that the schema does not declare where they are."""
    keys = declared.get(path, frozenset())
    found = []
    for key, value in config.items():
        if keys is not None and key not in keys:
            found.append(".".join((*path, str(key))))
            continue
        child = (*path, ANY if keys is None else key)
        if isinstance(value, Mapping):
            found += undeclared_in(value, declared, child)
        elif isinstance(value, list):
            for item in (v for v in value if isinstance(v, Mapping)):
                found += undeclared_in(item, declared, (*child, ANY))
    return list(dict.fromkeys(found))
