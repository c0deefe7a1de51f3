"""What an access export holds, and what the names of the files a connector writes give away.

An export must hold every value the service holds for its subject (:func:`absent`) and nothing of anyone else's
(:func:`present`): values are looked for as UTF-8 text and JSON-escaped, in each listed file and in each member
of a zip or gzip archive (:func:`dsr_framework.conformance.files.file_texts`). A file's name is where a
configured secret must not be either, in any form (:func:`name_problems`): names end up in listings, logs and
results.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path

from dsr_framework.conformance.files import file_texts
from dsr_framework.models import OutputFile
from dsr_framework.redact import Redactor

__all__ = ["absent", "export_texts", "name_problems", "present"]


def _forms(value: str) -> tuple[str, ...]:
    """How ``value`` may appear in a file scanned as latin-1: as UTF-8 bytes, or JSON-escaped."""
    return (value.encode("utf-8").decode("latin-1"), json.dumps(value)[1:-1])


def export_texts(files: Iterable[OutputFile]) -> list[str]:
    """The text of every listed file that exists (and of each archive member in it)."""
    return [text for listed in files if Path(listed.path).is_file() for text in file_texts(Path(listed.path))]


def absent(held: Collection[str], texts: list[str]) -> list[str]:
    """The values of ``held`` that no text holds."""
    return [v for v in held if not any(form in text for form in _forms(str(v)) for text in texts)]


def present(values: Iterable[str], texts: list[str]) -> list[str]:
    """The values that some text holds (in any case)."""
    folded = [text.lower() for text in texts]
    return [v for v in values if any(form.lower() in text for form in _forms(v) for text in folded)]


def name_problems(paths: Iterable[str], redactor: Redactor) -> list[str]:
    """Each written file whose name holds a configured secret (or 8 characters of one, in any form)."""
    names = [Path(path).name for path in dict.fromkeys(paths)]
    return [f"named a file it wrote after a configured secret (or 8 or more characters of one): {redactor.scrub(name)}"
            for name in names if redactor.leaks(name)]
