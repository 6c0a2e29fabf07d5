"""Whole, well-formed output: one retry with more room for a truncated answer, one repair for
invalid JSON; after that the caller moves on to the next provider. A streamed answer cannot be
retried once sent, so it is only checked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from rag.errors import InvalidOutput, TruncatedOutput
from rag.llm.call import Call
from rag.llm.observer import Labelled, Observer
from rag.llm.providers import Completion
from rag.llm.schema import canonical_json, parse_grounded_answer, repair_instruction
from rag.llm.types import Message

Run = Callable[[Call], Awaitable[Completion]]
_REPAIR_ECHO_CHARS = 8000


async def untruncated(call: Call, run: Run, lane: Labelled) -> tuple[Call, Completion]:
    """Run ``call``; if the answer hit ``max_tokens``, once more with twice the room (up to the ceiling)."""
    completion = await run(call)
    if completion.finish_reason != "length":
        return call, completion
    roomier = min(call.max_tokens * 2, call.ceiling)
    if roomier <= call.max_tokens:
        raise TruncatedOutput(f"{lane.name}: output hit max_tokens={call.max_tokens}", provider=lane.name)
    call = call.again(max_tokens=roomier)
    completion = await run(call)
    if completion.finish_reason == "length":
        raise TruncatedOutput(f"{lane.name}: output hit max_tokens={roomier} twice", provider=lane.name)
    return call, completion


async def valid_json(call: Call, completion: Completion, run: Run, lane: Labelled, observer: Observer) -> str:
    """The answer as canonical JSON, after at most one repair round; ``InvalidOutput`` otherwise."""
    try:
        return canonical_json(parse_grounded_answer(completion.text))
    except ValueError as exc:
        reason = str(exc)
    observer.record_invalid_json(lane, reason)
    messages = [
        *call.request.messages,
        Message(role="assistant", content=completion.text[:_REPAIR_ECHO_CHARS]),
        Message(role="user", content=repair_instruction(reason)),
    ]
    fixed = await run(call.again(request=call.request.model_copy(update={"messages": messages})))
    if fixed.finish_reason == "length":
        raise TruncatedOutput(f"{lane.name}: repaired JSON was cut off", provider=lane.name)
    try:
        return canonical_json(parse_grounded_answer(fixed.text))
    except ValueError as exc:
        raise InvalidOutput(
            f"{lane.name}: invalid JSON after one repair ({exc})", provider=lane.name
        ) from exc


def streamed_text(completion: Completion, call: Call, lane: Labelled, observer: Observer) -> str:
    """The final text of a stream that was already sent: a cut or invalid answer is an error, not an answer."""
    if completion.finish_reason == "length":
        observer.record_request("truncated")
        raise TruncatedOutput(
            f"{lane.name}: the streamed answer hit max_tokens and is incomplete", provider=lane.name
        )
    if not call.wants_json:
        return completion.text
    try:
        return canonical_json(parse_grounded_answer(completion.text))
    except ValueError as exc:
        raise InvalidOutput(f"{lane.name}: streamed JSON is invalid ({exc})", provider=lane.name) from exc
