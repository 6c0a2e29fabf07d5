from __future__ import annotations

from rag.llm.schema import ABSTENTION_SENTENCE
from rag.packing import Candidate, PackedContext, pack_context
from rag.prompts import PROMPT_ID, PROMPT_VERSION, build_request
from rag.types import Chunk, StoredChunk


def packed_context() -> PackedContext:
    text = "The bridge was finished in 1932 and is 503 metres long."
    stored = StoredChunk(
        chunk=Chunk("bridge:000000", "bridge", 0, text, 2, 2, 0, len(text), 14),
        document_name="bridges.pdf",
        collection="default",
        content_sha256="abc",
    )
    return pack_context([Candidate(stored, 0.8)], 500)


def test_request_carries_sources_prompt_identity_and_the_rules() -> None:
    packed = packed_context()
    request = build_request(
        "How long is the bridge?", packed, max_tokens=200, temperature=0.1, api_key_id="k1", bypass_cache=True
    )
    assert (request.prompt_id, request.prompt_version) == (PROMPT_ID, PROMPT_VERSION)
    assert request.question == "How long is the bridge?"
    assert request.sources == packed.sources
    assert (request.max_tokens, request.temperature, request.api_key_id, request.bypass_cache) == (
        200,
        0.1,
        "k1",
        True,
    )
    system, user = request.messages
    assert system.role == "system" and user.role == "user"
    assert ABSTENTION_SENTENCE in system.content
    assert "[1]" in system.content  # the citation format is shown
    assert packed.text in user.content and user.content.rstrip().endswith("How long is the bridge?")
    assert not request.json_mode and '"abstained"' not in system.content


def test_json_variant_asks_for_the_grounded_answer_shape() -> None:
    request = build_request("How long is the bridge?", packed_context(), json_mode=True)
    assert request.json_mode
    system = request.messages[0].content
    for key in ('"answer"', '"citations"', '"abstained"'):
        assert key in system
