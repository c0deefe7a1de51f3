"""The layout the maintainers rely on: import contracts kept, small functions, ARCHITECTURE.md true to the code."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from radon.complexity import cc_visit

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("connector_mparticle", "dsr_framework")
MAX_COMPLEXITY = 10
MAX_LINES = 40  #: statements after the docstring
#: A function may be longer or more branched when a comment right above it says why, starting with this.
EXPLAINED = "# kept whole:"

Function = ast.FunctionDef | ast.AsyncFunctionDef


def _sources() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _explained(lines: list[str], node: Function) -> bool:
    """True when the comment block right above the function (or its decorators) starts with EXPLAINED."""
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 2  # 0-based index of the line above
    while first >= 0 and lines[first].strip().startswith("#"):
        if lines[first].strip().startswith(EXPLAINED):
            return True
        first -= 1
    return False


def _body_lines(node: Function) -> int:
    body = node.body
    has_docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
        and isinstance(body[0].value.value, str)
    start = body[1].lineno if has_docstring and len(body) > 1 else body[0].lineno
    return (node.end_lineno or node.lineno) - start + 1


def _blocks(blocks: list[Any]) -> Iterator[Any]:
    """Radon's functions, methods and closures, at any depth (classes are looked into, not scored)."""
    for block in blocks:
        if hasattr(block, "methods"):
            yield from _blocks(block.methods)
            continue
        yield block
        yield from _blocks(getattr(block, "closures", []))


def _oversized() -> Iterator[str]:
    for path in _sources():
        text = path.read_text()
        lines = text.splitlines()
        complexity = {(b.lineno, b.name): b.complexity for b in _blocks(cc_visit(text))}
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or _explained(lines, node):
                continue
            where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
            if (score := complexity.get((node.lineno, node.name), 0)) > MAX_COMPLEXITY:
                yield f"{where}: cyclomatic complexity {score} > {MAX_COMPLEXITY}"
            if (length := _body_lines(node)) > MAX_LINES:
                yield f"{where}: {length} lines > {MAX_LINES}"


def test_no_function_is_over_forty_lines_or_complexity_ten_without_a_reason_above_it() -> None:
    found = list(_oversized())
    assert not found, (f"split these, or say why above the def with a '{EXPLAINED} <reason>' comment:\n  "
                       + "\n  ".join(found))


def test_the_oversize_rule_sees_a_long_branchy_function() -> None:
    branches = "\n".join(f"    if x == {i}:\n        return {i}" for i in range(12))
    source = f"def f(x):\n{branches}\n    return -1\n"
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef)
    assert _body_lines(node) == 25 and cc_visit(source)[0].complexity == 13
    assert not _explained(source.splitlines(), node)
    explained = f"@decorator\n{source}"
    above = f"{EXPLAINED} one flat table\n# (more words)\n{explained}"
    assert _explained(above.splitlines(), ast.parse(above).body[0])  # type: ignore[arg-type]
    elsewhere = f"{EXPLAINED} about something else\n\n{explained}"
    assert not _explained(elsewhere.splitlines(), ast.parse(elsewhere).body[0])  # type: ignore[arg-type]


@pytest.mark.skipif(shutil.which("lint-imports") is None and not (Path(sys.executable).parent / "lint-imports")
                    .exists(), reason="import-linter is not installed (pip install -e '.[test]')")
def test_the_import_contracts_hold() -> None:
    command = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 broken" in done.stdout


def _named_paths(text: str) -> set[str]:
    return set(re.findall(r"`((?:connector_mparticle|dsr_framework)/[\w/.]*)`", text))


def test_architecture_md_names_only_files_that_exist_and_every_connector_folder() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    named = _named_paths(text)
    assert named, "ARCHITECTURE.md names no file"
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"
    picture = text.split("```")[1]
    for entry in sorted((ROOT / "connector_mparticle").iterdir()):
        if entry.name.startswith(("_", ".")) or not (entry.suffix == ".py" or (entry / "__init__.py").exists()):
            continue  # data (schemas/, manifest.yaml), not code
        shown = f"{entry.name}/" if entry.is_dir() else entry.name
        assert shown in picture, f"ARCHITECTURE.md's picture does not show connector_mparticle/{shown}"
