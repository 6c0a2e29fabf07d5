"""Tesseract's thread limit reaches the tesseract process only; nothing writes ``os.environ``."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from ingest.loaders.tesseract import Tesseract
from rag.settings import Settings
from service.runtime import Runtime

# Stands in for tesseract: one TSV row whose word is the OMP_THREAD_LIMIT it was started with.
FAKE_TESSERACT = """#!/bin/sh
printf 'level\\tconf\\ttext\\n5\\t96.7\\t%s\\n' "limit=${OMP_THREAD_LIMIT:-unset}" > "$2.tsv"
"""


def test_thread_limit_is_set_for_the_tesseract_child_only(tmp_path: Path) -> None:
    fake = tmp_path / "tesseract"
    fake.write_text(FAKE_TESSERACT)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    before = os.environ.get("OMP_THREAD_LIMIT")
    data = Tesseract(thread_limit=3, command=str(fake)).data(Image.new("L", (8, 8), 255), "eng", [])
    assert data == {"level": [5], "conf": [96], "text": ["limit=3"]}  # numbers as pytesseract gives them
    assert os.environ.get("OMP_THREAD_LIMIT") == before


def test_building_the_runtime_changes_no_environment(make_settings: Callable[..., Settings]) -> None:
    before = dict(os.environ)
    with Runtime(make_settings(ocr_thread_limit=2)) as runtime:
        runtime.index  # noqa: B018 - opening the index is part of every start
    assert dict(os.environ) == before
