"""What an access export holds, and what the names of the files a connector writes give away.

An export must hold every value the service holds for its subject (:func:`absent`) and nothing of anyone else's
(:func:`present`): values are looked for as UTF-8 text and JSON-escaped, in each listed file and in each member
of a zip or gzip archive (:func:`dsr_framework.conformance.files.file_texts`). A file's name is where a
configured secret or the subject's personal data must not be either (:func:`name_problems`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from pathlib import Path

from dsr_framework.conformance.files import file_texts
from dsr_framework.conformance.personal import PersonalData
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


def name_problems(paths: Iterable[str], redactor: Redactor, people: PersonalData) -> list[str]:
    """Each written file whose name holds a configured secret (or 8 characters of one) or personal data."""
    found = []
    for path in dict.fromkeys(paths):
        name = Path(path).name
        if redactor.finds_secret(name) or redactor.finds_fragment(name):
            found.append(f"named a file it wrote after a configured secret (or 8 or more characters of one): "
                         f"{redactor.scrub(name)}")
        elif (what := people.found_in(name)) is not None:
            found.append(f"put {what} of a person into the name of a file it wrote")
    return found
