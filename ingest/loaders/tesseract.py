"""Tesseract as a child process whose environment is its own.

Tesseract's OpenMP threads fight each other on a small shared machine (one thread is about
4x faster than unlimited on 2 cores), and the only knob is ``OMP_THREAD_LIMIT`` in
tesseract's own environment. pytesseract hands every child this process's ``os.environ``
and has no way to change it for one call, so the limit would have to be written into
``os.environ``, where it leaks into every other child and into any library that reads it
later (torch's OpenMP pool, for one). So the commands are run here, exactly as pytesseract
runs them (same arguments, same temporary files, same output parsing), with the limit set
for the tesseract process only.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

_LANGUAGE = re.compile(r"^[a-z_]+$")
_FORMATS = frozenset({"JPEG", "JPEG2000", "PNG", "PBM", "PGM", "PPM", "TIFF", "BMP", "GIF", "WEBP"})


class TesseractMissing(Exception):
    """No tesseract binary on ``PATH``."""


class TesseractFailed(Exception):
    """Tesseract ran and exited with an error; ``str()`` reads like pytesseract's ``TesseractError``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Tesseract:
    """How to run tesseract: ``thread_limit`` becomes ``OMP_THREAD_LIMIT`` for the child only."""

    thread_limit: int
    command: str = "tesseract"
    timeout_s: float | None = None

    def _binary(self) -> str:
        found = shutil.which(self.command)
        if found is None:
            raise TesseractMissing(self.command)
        return found

    def _env(self) -> dict[str, str]:
        return {**os.environ, "OMP_THREAD_LIMIT": str(self.thread_limit)}

    def languages(self) -> set[str]:
        """The installed language packs (``tesseract --list-langs``)."""
        return _languages(self._binary())

    def data(self, image: Image.Image, lang: str, args: list[str]) -> dict[str, list[int | str]]:
        """``image_to_data``: tesseract's word table (TSV) as columns; ``args`` such as ``--psm 6``.

        As pytesseract's ``Output.DICT``: numbers are truncated to ``int`` (confidences too),
        the last column (the word) stays text."""
        tsv = self._run(image, "tsv", ["-l", lang, "-c", "tessedit_create_tsv=1", *args])
        return _columns(tsv)

    def osd(self, image: Image.Image) -> dict[str, str]:
        """``image_to_osd``: orientation and script detection, ``{"Rotate": "90", ...}``."""
        text = self._run(image, "osd", ["-l", "osd", "--psm", "0"])
        pairs = (line.split(": ", 1) for line in text.splitlines())
        return {kv[0].strip(): kv[1].strip() for kv in pairs if len(kv) == 2}

    def _run(self, image: Image.Image, extension: str, args: list[str]) -> str:
        binary = self._binary()
        image_format = image.format or "PNG"
        if image_format not in _FORMATS:
            image_format = "PNG"
        with tempfile.TemporaryDirectory(prefix="rag-ocr-") as tmp:
            source = Path(tmp) / f"input.{image_format.lower()}"
            image.save(source, format=image_format)
            base = Path(tmp) / "output"
            try:
                done = subprocess.run(
                    [binary, str(source), str(base), *args],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    env=self._env(),
                    timeout=self.timeout_s,
                    check=False,
                )
            except FileNotFoundError as exc:
                raise TesseractMissing(binary) from exc
            if done.returncode:
                message = " ".join(done.stderr.decode("utf-8", errors="replace").splitlines()).strip()
                raise TesseractFailed(done.returncode, message)
            return base.with_suffix(f".{extension}").read_text(encoding="utf-8")


@functools.lru_cache(maxsize=8)
def _languages(binary: str) -> set[str]:
    try:
        done = subprocess.run(
            [binary, "--list-langs"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
    except OSError as exc:
        raise TesseractMissing(binary) from exc
    if done.returncode not in (0, 1):  # tesseract 3 exits 1 here
        raise TesseractFailed(done.returncode, done.stdout.decode("utf-8", errors="replace").strip())
    lines = done.stdout.decode("utf-8", errors="replace").splitlines()
    return {name for line in lines if _LANGUAGE.match(name := line.strip())}


def _columns(tsv: str) -> dict[str, list[int | str]]:
    """TSV with a header row -> ``{column: values}``, converted as pytesseract's ``file_to_dict``."""
    rows = [row.split("\t") for row in tsv.strip().split("\n")]
    if len(rows) < 2:
        return {}
    header, body = rows[0], rows[1:]
    if len(body[-1]) < len(header):  # the last word is empty: its cell is missing
        body[-1].append("")
    last = len(header) - 1
    return {
        name: [row[i] if i == last else _number(row[i]) for row in body if len(row) > i]
        for i, name in enumerate(header)
    }


def _number(cell: str) -> int | str:
    try:
        return int(float(cell))
    except ValueError:
        return cell


__all__ = ["Tesseract", "TesseractFailed", "TesseractMissing"]
