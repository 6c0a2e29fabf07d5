"""The grounded-answer prompt. Its id and version go on every answer and into the cache key,
so changing the wording means bumping ``PROMPT_VERSION``."""

from __future__ import annotations

from rag.llm.schema import ABSTENTION_SENTENCE, JSON_SHAPE_HINT
from rag.llm.types import LLMRequest, Message
from rag.packing import PackedContext

PROMPT_ID = "grounded-answer"
PROMPT_VERSION = "1"

SYSTEM_PROMPT = f"""You answer questions using only the numbered sources you are given.
Rules:
- Use only facts stated in the sources. Do not use outside knowledge, and do not guess.
- Cite every claim with the label of the source it comes from, like [1] or [2][3], right after the claim.
- Cite only labels that appear in the sources.
- If the sources do not contain the answer, reply with exactly this sentence and nothing else: \
{ABSTENTION_SENTENCE}
- Be concise. Quote figures, names and dates exactly as the sources give them."""

JSON_INSTRUCTIONS = f"""Reply with one JSON object and nothing else, of the shape {JSON_SHAPE_HINT}.
"answer" holds the answer text with its [n] citations; "citations" lists the labels you used;
when the sources do not contain the answer set "abstained" to true and "answer" to \
"{ABSTENTION_SENTENCE}"."""


def user_message(question: str, context: str) -> str:
    return f"Sources:\n\n{context}\n\nQuestion: {question.strip()}"


def build_messages(question: str, packed: PackedContext, *, json_mode: bool = False) -> list[Message]:
    system = SYSTEM_PROMPT + ("\n\n" + JSON_INSTRUCTIONS if json_mode else "")
    return [
        Message(role="system", content=system),
        Message(role="user", content=user_message(question, packed.text)),
    ]


def build_request(
    question: str,
    packed: PackedContext,
    *,
    json_mode: bool = False,
    max_tokens: int = 512,
    temperature: float = 0.0,
    bypass_cache: bool = False,
    api_key_id: str | None = None,
) -> LLMRequest:
    """The request the gateway sends; ``sources`` travel with it for the cache key and the
    extractive answerer, which reads them instead of the messages."""
    return LLMRequest(
        messages=build_messages(question, packed, json_mode=json_mode),
        max_tokens=max_tokens,
        temperature=temperature,
        json_mode=json_mode,
        prompt_id=PROMPT_ID,
        prompt_version=PROMPT_VERSION,
        question=question,
        sources=list(packed.sources),
        bypass_cache=bypass_cache,
        api_key_id=api_key_id,
    )
