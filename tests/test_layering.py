"""The layers import only downwards: every import in every module, read with ``ast``.

    rag  <-  ingest  <-  service  <-  api, eval  <-  cli

``rag`` is the core and imports nothing of ours; ``ingest`` builds on ``rag``; ``service`` (the
composition root and the running service) on both; ``api`` (HTTP only) and ``eval`` on the
layers below them, never on each other; ``cli`` may use them all (it serves ``api`` and runs
``eval``). ``deploy`` (the shared engines and the local cluster) imports nothing of ours; ``eval``
and ``cli`` may start it. Every import counts: at module level, inside functions (lazy imports), under
``TYPE_CHECKING``, relative ones, and ``importlib.import_module("...")`` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ALLOWED: dict[str, frozenset[str]] = {
    "rag": frozenset(),
    "ingest": frozenset({"rag"}),
    "service": frozenset({"ingest", "rag"}),
    "api": frozenset({"service", "ingest", "rag"}),
    "eval": frozenset({"service", "ingest", "rag", "deploy"}),
    "cli": frozenset({"api", "eval", "service", "ingest", "rag", "deploy"}),
    "deploy": frozenset(),
}
"""Each layer and the other layers it may import (itself is always allowed)."""

OURS = frozenset({*ALLOWED, "tests", "scripts"})
"""Top-level names that are this project's code: importing any of them is checked."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    """The absolute name a relative import (``from ..x import y``) refers to."""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > len(base):
        return "<beyond the top level>"
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, *([target] if target else [])])


def imports(path: Path, module: str | None = None) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` for every import in a file, wherever it sits.

    ``module``: the file's dotted name (for relative imports); by default, from its path."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = module or _module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield node.lineno, _resolve(module, is_package, node.level, node.module)
            elif node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            literal = first.value if isinstance(first, ast.Constant) else None
            if name in ("import_module", "__import__") and isinstance(literal, str):
                yield node.lineno, literal


def violations(layer: str) -> list[str]:
    found = []
    for path in sorted((REPO / layer).rglob("*.py")):
        for line, name in imports(path):
            top = name.split(".")[0]
            if top in OURS and top != layer and top not in ALLOWED[layer]:
                found.append(f"{path.relative_to(REPO)}:{line}: {layer} imports {name}")
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_the_layers_below(layer: str) -> None:
    assert (REPO / layer / "__init__.py").exists(), f"{layer} is not a package"
    found = violations(layer)
    allowed = ", ".join(sorted(ALLOWED[layer])) or "nothing of ours"
    assert not found, f"{layer} may import {allowed}:\n" + "\n".join(found)


def test_the_checker_sees_every_kind_of_import(tmp_path: Path) -> None:
    """Lazy, TYPE_CHECKING, relative and importlib imports are all reported."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "import importlib\n"
        "if TYPE_CHECKING:\n"
        "    from api.service import Service\n"
        "def f():\n"
        "    import cli.main\n"
        "    from ..ingest import intake\n"
        "    importlib.import_module('eval.runner')\n"
    )
    found = {name for _, name in imports(source, module="rag.probe")}
    assert {"api.service", "cli.main", "eval.runner"} <= found
    assert "<beyond the top level>" in found  # `..` from a top-level package's module escapes it
