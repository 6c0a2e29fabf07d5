"""Bad input gets its own error class and code from rag.errors, never a traceback."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfWriter

from ingest.loaders import load_document
from rag.errors import (
    CorruptDocument,
    EmptyDocument,
    EncryptedDocument,
    ImageTooLarge,
    OcrUnavailable,
    PageTooLarge,
    TooManyPages,
    UnsupportedType,
)
from rag.settings import Settings

from .conftest import read_all

SMALL_PDF = "AMCOR_2022_8K_dated-2022-07-01.pdf"


def test_zero_bytes(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "empty.pdf"
    path.touch()
    with pytest.raises(EmptyDocument) as info:
        read_all(path, settings)
    assert (info.value.code, info.value.status) == ("empty_document", 422)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated_pdf(tmp_path: Path, financebench: Path, settings: Settings, fraction: float) -> None:
    data = (financebench / "pdfs" / SMALL_PDF).read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CorruptDocument) as info:
        read_all(path, settings)
    assert info.value.code == "corrupt_document"


def test_password_protected_pdf(tmp_path: Path, financebench: Path, settings: Settings) -> None:
    writer = PdfWriter(clone_from=financebench / "pdfs" / SMALL_PDF)
    writer.encrypt(user_password="s3cret", algorithm="AES-128")
    path = tmp_path / "locked.pdf"
    writer.write(path)
    with pytest.raises(EncryptedDocument) as info:
        read_all(path, settings)
    assert (info.value.code, info.value.status) == ("encrypted_document", 422)


def test_too_many_pages(financebench: Path, make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(TooManyPages) as info:
        load_document(financebench / "pdfs" / "3M_2018_10K.pdf", make_settings(max_pdf_pages=100))
    assert (info.value.code, info.value.status) == ("too_many_pages", 413)
    assert info.value.extra["limit"] == 100 and info.value.extra["pages"] > 100


def test_giant_page(tmp_path: Path, settings: Settings) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.add_blank_page(width=20_000, height=20_000)
    path = tmp_path / "poster.pdf"
    writer.write(path)
    with pytest.raises(PageTooLarge) as info:
        load_document(path, settings)  # refused before any page is read
    assert (info.value.code, info.value.extra["page"]) == ("page_too_large", 2)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_png_header_claiming_huge_size(tmp_path: Path, settings: Settings) -> None:
    """A tiny PNG whose IHDR claims 100,000 x 100,000 pixels (valid CRC): refused unread."""
    path = tmp_path / "bomb.png"
    Image.new("L", (64, 64)).save(path)
    data = path.read_bytes()
    ihdr = bytearray(data[16:29])
    ihdr[0:8] = struct.pack(">II", 100_000, 100_000)
    path.write_bytes(data[:8] + _png_chunk(b"IHDR", bytes(ihdr)) + data[33:])
    with pytest.raises(ImageTooLarge) as info:
        load_document(path, settings)
    assert (info.value.code, info.value.status) == ("image_too_large", 413)


def test_genuinely_large_black_png(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    path = tmp_path / "black.png"
    Image.new("1", (3000, 3000)).save(path, optimize=True)
    assert path.stat().st_size < 10_000  # compresses to almost nothing
    with pytest.raises(ImageTooLarge):
        load_document(path, make_settings(max_image_pixels=4_000_000))
    # over twice the limit PIL refuses on its own, and its message states twice the limit
    with pytest.raises(ImageTooLarge) as info:
        load_document(path, make_settings(max_image_pixels=1_000_000))
    assert info.value.message == "The image has 9000000 pixels; the limit is 1000000 pixels"


def test_tiff_with_huge_later_frame(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    path = tmp_path / "frames.tif"
    small, large = Image.new("1", (100, 100), 1), Image.new("1", (2500, 2500), 1)
    small.save(path, save_all=True, append_images=[large], compression="group4")
    with pytest.raises(ImageTooLarge):
        load_document(path, make_settings(max_image_pixels=1_000_000))


def test_truncated_jpeg_fails_when_its_page_is_read(
    tmp_path: Path, datasets: Path, settings: Settings
) -> None:
    data = (datasets / "sroie_receipts_scanned" / "img" / "000.jpg").read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 3])
    document = load_document(path, settings)  # the header is intact
    with pytest.raises(CorruptDocument):
        list(document.pages)


def test_binary_garbage_named_pdf(tmp_path: Path, settings: Settings) -> None:
    path = tmp_path / "annual-report.pdf"
    path.write_bytes(os.urandom(100_000))
    with pytest.raises(UnsupportedType) as info:
        read_all(path, settings)
    assert (info.value.code, info.value.status) == ("unsupported_type", 415)


def test_unknown_ocr_language(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    path = tmp_path / "scan.png"
    Image.new("L", (200, 100), 255).save(path)
    with pytest.raises(OcrUnavailable) as info:
        load_document(path, make_settings(ocr_language="eng+zzz"))
    assert (info.value.code, info.value.status) == ("ocr_unavailable", 503)
    assert "zzz" in info.value.message


def test_missing_tesseract(
    tmp_path: Path, settings: Settings, datasets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tesseract binary can be found
    scanned = datasets / "financebench_scanned_evidence" / "pdfs" / "AMCOR_2023_10K_p49.pdf"
    with pytest.raises(OcrUnavailable):
        read_all(scanned, settings)
    image = tmp_path / "scan.png"
    Image.new("L", (200, 100), 255).save(image)
    with pytest.raises(OcrUnavailable):
        load_document(image, settings)
