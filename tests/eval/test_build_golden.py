"""The shipped golden sets are exactly what the build script makes from the public datasets."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from eval.golden import DEFAULT_GOLDEN_DIR, REPO_ROOT


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
def test_build_reproduces_the_shipped_sets(datasets: Path, tmp_path: Path) -> None:
    out = tmp_path / "golden"
    script = REPO_ROOT / "scripts" / "build_golden.py"
    done = subprocess.run(
        [sys.executable, str(script), "--datasets", str(datasets), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert _tree(out) == _tree(DEFAULT_GOLDEN_DIR)
    _, mismatch, errors = filecmp.cmpfiles(out, DEFAULT_GOLDEN_DIR, _tree(out), shallow=False)
    assert mismatch == [] and errors == []
