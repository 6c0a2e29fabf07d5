"""The one JSON shape every model is asked for, so all providers' answers are checked the same way."""

from __future__ import annotations

import json
import re

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ABSTENTION_SENTENCE = "The documents do not say."

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


def canonical_json(answer: GroundedAnswer) -> str:
    return json.dumps(answer.model_dump(), ensure_ascii=False)


__all__ = [
    "ABSTENTION_SENTENCE",
    "JSON_SHAPE_HINT",
    "GroundedAnswer",
    "canonical_json",
    "parse_grounded_answer",
    "repair_instruction",
]
