"""Models shipped as parts: joined, verified against their pins, extracted once; refused when changed.

The split-bundle mechanics run on a small bundle made here (a zip of known files cut into
parts), so a part changed by one byte, a weights file that is not the pinned one and a cached
copy changed afterwards are all exercised in milliseconds. The real all-mpnet-base-v2 parts are
optional (``make models-mpnet``): the slow test that loads them skips, saying so, without them.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rag.errors import ModelUnavailable
from rag.models import (
    MPNET,
    MPNET_SAFETENSORS_SHA256,
    JoinedParts,
    SplitBundle,
    canonical_model_name,
    installed_parts,
    materialize,
    resolve_model,
    verify_extracted,
)
from rag.vectors import EmbeddingSpec, spec_of

WEIGHTS = np.random.default_rng(7).bytes(300_000)
CONFIG = b'{"hidden_size": 8}'


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _bundle(weights: bytes = WEIGHTS) -> SplitBundle:
    return SplitBundle(
        name="example/fake-model",
        folder="fake-model",
        distributions=("fake-model-part-001", "fake-model-part-002", "fake-model-part-003"),
        files={
            "model.safetensors": (len(weights), _sha(weights)),
            "sub/config.json": (len(CONFIG), _sha(CONFIG)),
        },
    )


def _parts(tmp_path: Path, weights: bytes = WEIGHTS, flip: int | None = None) -> list[Path]:
    """The fake model zipped (with a file that must not be extracted) and cut into three parts."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("fake-model/model.safetensors", weights)
        archive.writestr("fake-model/sub/config.json", CONFIG)
        archive.writestr("fake-model/desktop.ini", b"[.ShellClassInfo]")
    data = bytearray(buf.getvalue())
    if flip is not None:
        data[flip] ^= 0x01
    cuts = [0, len(data) // 3, 2 * len(data) // 3 + 11, len(data)]
    parts = []
    for n in range(3):
        part = tmp_path / "parts" / f"fake-model.zip.{n + 1:03d}"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(bytes(data[cuts[n] : cuts[n + 1]]))
        parts.append(part)
    return parts


def test_joined_parts_read_as_one_file(tmp_path: Path) -> None:
    parts = _parts(tmp_path)
    whole = b"".join(p.read_bytes() for p in parts)
    with JoinedParts(parts) as joined:
        assert joined.read() == whole
        joined.seek(len(whole) // 3 - 5)  # across a boundary between two parts
        assert joined.read(10) == whole[len(whole) // 3 - 5 : len(whole) // 3 + 5]
        joined.seek(-4, io.SEEK_END)
        assert joined.read() == whole[-4:]


def test_parts_are_joined_verified_and_extracted_once(tmp_path: Path) -> None:
    bundle, cache = _bundle(), tmp_path / "cache"
    folder = materialize(bundle, _parts(tmp_path), cache)
    assert folder.parent == cache
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "sub" / "config.json").read_bytes() == CONFIG
    assert not (folder / "desktop.ini").exists()  # only pinned files come out
    assert [p.name for p in cache.iterdir()] == [folder.name]  # no temporary folder left
    assert verify_extracted(bundle, folder) == []
    stamp = (folder / ".verified.json").stat().st_mtime_ns
    assert materialize(bundle, [], cache) == folder  # the verified copy is used; no part is read
    assert (folder / ".verified.json").stat().st_mtime_ns == stamp


def test_weights_that_are_not_the_pinned_ones_are_refused(tmp_path: Path) -> None:
    fake = np.random.default_rng(8).bytes(len(WEIGHTS))  # a well-formed zip, other weights
    with pytest.raises(ModelUnavailable, match="SHA-256") as caught:
        materialize(_bundle(), _parts(tmp_path, weights=fake), tmp_path / "cache")
    assert caught.value.code == "model_unavailable"
    assert not any((tmp_path / "cache").iterdir())  # nothing half-extracted stays behind


def test_a_part_changed_by_one_byte_is_refused(tmp_path: Path) -> None:
    parts = _parts(tmp_path, flip=20_000)  # inside the compressed weights
    with pytest.raises(ModelUnavailable):
        materialize(_bundle(), parts, tmp_path / "cache")
    assert not any((tmp_path / "cache").iterdir())


def test_a_missing_part_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable):
        materialize(_bundle(), _parts(tmp_path)[:2], tmp_path / "cache")


def test_a_cached_copy_changed_later_is_refused_and_extracted_again(tmp_path: Path) -> None:
    bundle, parts, cache = _bundle(), _parts(tmp_path), tmp_path / "cache"
    folder = materialize(bundle, parts, cache)
    weights = folder / "model.safetensors"
    tampered = bytearray(weights.read_bytes())
    tampered[1234] ^= 0xFF
    weights.write_bytes(bytes(tampered))
    problems = verify_extracted(bundle, folder)
    assert len(problems) == 1 and "model.safetensors has SHA-256" in problems[0]
    assert materialize(bundle, parts, cache) == folder
    assert weights.read_bytes() == WEIGHTS


def test_names_are_canonical(tmp_path: Path) -> None:
    assert canonical_model_name("all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert canonical_model_name("all-mpnet-base-v2") == "sentence-transformers/all-mpnet-base-v2"
    assert canonical_model_name("org/other") == "org/other"
    assert canonical_model_name(str(tmp_path / ".." / tmp_path.name)) == str(tmp_path.resolve())


def test_query_vectors_carry_their_model(embedder) -> None:  # type: ignore[no-untyped-def]
    vector = embedder.embed_query("where is the tower?")
    assert spec_of(vector) == EmbeddingSpec("sentence-transformers/all-MiniLM-L6-v2", "torch", 384)
    assert spec_of(vector[:]) == spec_of(vector)  # numpy views keep it
    assert spec_of(embedder.embed(["where is the tower?"])[0]) is None  # bulk rows carry none


@pytest.mark.slow
def test_mpnet_from_the_installed_parts(tmp_path: Path) -> None:
    """The real parts join into the pinned upstream weights, load, and embed to 768 dims."""
    if installed_parts(MPNET) is None:
        pytest.skip("all-mpnet-base-v2 parts are not installed (optional: make models-mpnet)")
    from rag.embedder import TorchEmbedder

    loadable, origin = resolve_model("sentence-transformers/all-mpnet-base-v2", tmp_path)
    assert origin == "bundle" and Path(loadable).parent == tmp_path
    weights = Path(loadable) / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert digest == MPNET_SAFETENSORS_SHA256

    embedder = TorchEmbedder("all-mpnet-base-v2", cache_dir=tmp_path)
    assert embedder.dim == 768 and embedder.origin == "bundle"
    assert embedder.spec == EmbeddingSpec("sentence-transformers/all-mpnet-base-v2", "torch", 768)
    tower, height, plants = embedder.embed(
        [
            "The Eiffel Tower is 330 metres tall.",
            "How high is the Eiffel Tower?",
            "Photosynthesis turns light into chemical energy.",
        ]
    )
    assert tower.shape == (768,) and float(tower @ tower) == pytest.approx(1.0, abs=1e-4)
    assert float(tower @ height) > float(tower @ plants) + 0.3

    # one byte of the extracted weights changed: refused, and extracted again from the parts
    with weights.open("r+b") as fh:
        fh.seek(10_000_000)
        byte = fh.read(1)
        fh.seek(10_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    assert any("model.safetensors" in p for p in verify_extracted(MPNET, Path(loadable)))
    assert resolve_model("sentence-transformers/all-mpnet-base-v2", tmp_path)[0] == loadable
    assert verify_extracted(MPNET, Path(loadable)) == []
