"""Read a multipart upload straight to disk, hashing as it goes, refusing it as soon as it is too big.

Starlette's own form parser spools every file to a temporary file before the endpoint
runs, with no size limit on files; this parser writes each file part into the uploads
directory as its bytes arrive, so the size limit holds while streaming, memory stays flat,
and the content hash (the document id) is known when the last byte lands.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from rag.errors import InvalidRequest, TooLarge

MAX_FIELD_BYTES = 64 * 1024
TEXT_FIELDS = frozenset({"collection", "metadata"})
"""The text fields an upload takes; any other (or one sent twice) is refused before it is read:
one request with 1.5 GB of extra fields raised RSS by 1.4 GB before its 422."""


@dataclass
class ReceivedFile:
    filename: str
    path: Path
    size: int = 0
    sha256: str = ""


@dataclass
class ReceivedForm:
    files: list[ReceivedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        for f in self.files:
            f.path.unlink(missing_ok=True)


def safe_filename(raw: str) -> str:
    """The last path component, without control characters, at most 255 bytes."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")
    return name.encode()[:255].decode(errors="ignore") or "upload"


class _Receiver:
    def __init__(self, dest: Path, max_file_bytes: int, max_files: int) -> None:
        self.dest = dest
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.form = ReceivedForm()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field: str | None = None
        self._field_data = bytearray()
        self._file: ReceivedFile | None = None
        self._fh: IO[bytes] | None = None
        self._hash: Any = None

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def on_part_begin(self) -> None:
        self._disposition, self._field, self._file = b"", None, None
        self._field_data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InvalidRequest("each multipart part needs a Content-Disposition name")
        if b"filename" in options:
            if len(self.form.files) >= self.max_files:
                raise InvalidRequest(f"at most {self.max_files} files per upload", limit=self.max_files)
            filename = safe_filename(options[b"filename"].decode("utf-8", errors="replace"))
            self._file = ReceivedFile(filename, self.dest / f".{uuid.uuid4().hex}.part")
            self.form.files.append(self._file)
            self._fh = self._file.path.open("wb")
            self._hash = hashlib.sha256()
        else:
            name = options[b"name"].decode("utf-8", errors="replace")
            if name not in TEXT_FIELDS:
                raise InvalidRequest(
                    f"unknown form field {name[:64]!r}: an upload takes files, collection and metadata"
                )
            if name in self.form.fields:
                raise InvalidRequest(f"form field {name!r} was sent twice")
            self._field = name

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._file is not None and self._fh is not None:
            self._file.size += len(chunk)
            if self._file.size > self.max_file_bytes:
                mb = self.max_file_bytes // (1024 * 1024)
                raise TooLarge(
                    f"{self._file.filename} is larger than the {mb} MB limit",
                    limit=self.max_file_bytes,
                )
            self._fh.write(chunk)
            self._hash.update(chunk)
        else:
            self._field_data.extend(chunk)
            if len(self._field_data) > MAX_FIELD_BYTES:
                raise TooLarge(f"form field {self._field!r} is larger than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self._file is not None and self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())  # the job row will point at it: it must survive a crash
            self._fh.close()
            self._fh = None
            self._file.sha256 = self._hash.hexdigest()
            final = self._file.path.with_name(self._file.path.name[1:].removesuffix(".part"))
            self._file.path.rename(final)  # complete: no longer a partial upload
            self._file.path = final
        elif self._field is not None:
            self.form.fields[self._field] = self._field_data.decode("utf-8", errors="replace")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


async def receive_upload(
    request: Request, dest: Path, *, max_file_bytes: int, max_files: int
) -> ReceivedForm:
    """Parse a ``multipart/form-data`` request into files on disk under ``dest`` and text fields."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise InvalidRequest("uploads must be sent as multipart/form-data")
    dest.mkdir(parents=True, exist_ok=True)
    receiver = _Receiver(dest, max_file_bytes, max_files)
    parser = MultipartParser(params[b"boundary"], receiver.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
        if receiver._fh is not None:
            raise InvalidRequest("the multipart body ended inside a file")
    except MultipartParseError as exc:
        receiver.close()
        receiver.form.discard()
        raise InvalidRequest("the multipart body is malformed") from exc
    except ClientDisconnect:
        receiver.close()
        receiver.form.discard()
        raise InvalidRequest("the client went away during the upload") from None
    except BaseException:
        receiver.close()
        receiver.form.discard()
        raise
    return receiver.form


__all__ = ["ReceivedFile", "ReceivedForm", "receive_upload", "safe_filename"]
