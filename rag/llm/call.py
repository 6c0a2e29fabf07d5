"""One request as the gateway carries it to a provider, and what the whole request spent."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rag.llm.clock import Clock
from rag.llm.types import LLMRequest, Usage
from rag.llm.usage import estimate_prompt_tokens


@dataclass
class Tally:
    """What one gateway request spent across all the calls it made."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    estimated: bool = False

    def add(self, usage: Usage | None) -> None:
        self.calls += 1
        if usage is not None:
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
            self.cost += usage.cost
            self.estimated = self.estimated or usage.estimated

    def usage(self) -> Usage:
        return Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            estimated=self.estimated,
            cost=round(self.cost, 10),
        )


@dataclass
class Call:
    """One prepared request to one lane; the prompt estimate is computed at most once, on demand."""

    request: LLMRequest
    model: str
    max_tokens: int
    ceiling: int  # the most max_tokens may grow to: the provider's limit, and what the window leaves
    deadline: float
    tally: Tally
    clock: Clock
    wants_json: bool = False  # the caller asked for JSON (even where the provider has no JSON mode)
    _prompt_estimate: int | None = field(default=None, repr=False)

    @property
    def prompt_estimate(self) -> int:
        if self._prompt_estimate is None:
            self._prompt_estimate = estimate_prompt_tokens(self.request.messages, self.model)
        return self._prompt_estimate

    def remaining(self) -> float:
        return self.deadline - self.clock.monotonic()

    def again(self, *, request: LLMRequest | None = None, max_tokens: int | None = None) -> Call:
        """The same call with more room or new messages (a new prompt is estimated anew)."""
        if request is None:
            return replace(self, max_tokens=max_tokens or self.max_tokens)
        return replace(self, request=request, max_tokens=max_tokens or self.max_tokens, _prompt_estimate=None)
