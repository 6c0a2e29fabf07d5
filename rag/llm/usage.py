"""Token estimates with tiktoken: before a call (limits, budgets), and when a provider reports no usage."""

from __future__ import annotations

from collections.abc import Sequence

from rag.llm.types import Message
from rag.tokens import encoding_for_model

# Chat formats wrap each message in a few tokens of framing (OpenAI documents 3-4 per message).
_PER_MESSAGE = 4
_PER_REPLY = 3


def estimate_text_tokens(text: str, model: str = "") -> int:
    return len(encoding_for_model(model).encode(text, disallowed_special=()))


def estimate_prompt_tokens(messages: Sequence[Message], model: str = "") -> int:
    """Prompt size as the provider will count it, approximately (exact for OpenAI's cl100k/o200k models)."""
    encoding = encoding_for_model(model)
    total = _PER_REPLY
    for message in messages:
        total += _PER_MESSAGE + len(encoding.encode(message.content, disallowed_special=()))
    return total
