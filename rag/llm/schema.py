"""The one JSON shape every model is asked for, so all providers' answers are checked the same way."""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.llm.types import LLMRequest, Message

ABSTENTION_SENTENCE = "The documents do not say."

EVIDENCE_SENTENCE = "The answer is not stated directly in the documents. The closest evidence:"
"""How an evidence answer begins: the offline answerer found relevant figures but no sentence that
states the answer (a ratio to compute from a balance sheet), and quotes them after this sentence
with their [n] labels. It is the wire format of ``answer_type: "evidence"`` in text and JSON mode
alike, as the abstention sentence is of abstaining: the pipeline reads it at the start of the
answer (:func:`is_evidence`), so it survives the response cache and streaming unchanged."""

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*(.*?)\s*```\s*$", re.DOTALL)


class GroundedAnswer(BaseModel):
    """What a model returns in JSON mode: the answer, the [n] labels it rests on, and whether it abstained."""

    model_config = ConfigDict(extra="ignore")

    answer: str
    citations: list[int] = Field(default_factory=list)
    abstained: bool = False


JSON_SHAPE_HINT = '{"answer": string, "citations": [integer, ...], "abstained": boolean}'


def _candidate_json(text: str) -> str:
    """Models wrap JSON in code fences or a sentence; take the outermost object."""
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        return text.strip()
    return text[start : end + 1]


def parse_grounded_answer(text: str) -> GroundedAnswer:
    """Validate model output against :class:`GroundedAnswer`; raises ``ValueError`` with the reason."""
    candidate = _candidate_json(text)
    try:
        return GroundedAnswer.model_validate_json(candidate)
    except ValidationError as exc:
        raise ValueError(_short_reason(exc)) from exc


def _short_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if errors and errors[0].get("type") == "json_invalid":
        return "not valid JSON"
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'root'}: {e['msg']}" for e in errors[:3])


def repair_instruction(reason: str) -> str:
    """The follow-up message of the single repair attempt."""
    return (
        f"Your previous reply could not be used ({reason}). Reply again with only one JSON object of the "
        f"shape {JSON_SHAPE_HINT}, with no other text."
    )


def with_json_hint(request: LLMRequest) -> LLMRequest:
    """OpenAI's JSON mode rejects prompts that never mention JSON; others need telling anyway."""
    if any("json" in m.content.lower() for m in request.messages):
        return request
    hint = Message(role="system", content=f"Reply with only a JSON object of the shape {JSON_SHAPE_HINT}.")
    return request.model_copy(update={"messages": [hint, *request.messages]})


def is_evidence(answer: str) -> bool:
    """Whether an answer's text is an evidence answer (it begins with :data:`EVIDENCE_SENTENCE`)."""
    return " ".join(answer.split()).startswith(EVIDENCE_SENTENCE)


def canonical_json(answer: GroundedAnswer) -> str:
    return json.dumps(answer.model_dump(), ensure_ascii=False)


__all__ = [
    "ABSTENTION_SENTENCE",
    "EVIDENCE_SENTENCE",
    "JSON_SHAPE_HINT",
    "GroundedAnswer",
    "canonical_json",
    "is_evidence",
    "parse_grounded_answer",
    "repair_instruction",
    "with_json_hint",
]
