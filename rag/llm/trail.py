"""What one gateway request went through: the providers it skipped and why, what it spent, its deadline."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rag.errors import BudgetExceeded, ProviderUnavailable, RagError
from rag.llm.call import Tally
from rag.llm.lane import Lane
from rag.llm.observer import Observer
from rag.llm.providers import Completion
from rag.llm.types import LLMResponse


@dataclass
class Trail:
    observer: Observer
    deadline: float
    fail_over_budget: bool = False  # RAG_BUDGET_ACTION=fail: an exceeded budget ends the request
    tally: Tally = field(default_factory=Tally)
    failures: list[str] = field(default_factory=list)
    errors: list[RagError] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def skip(self, lane: Lane, error: RagError) -> None:
        """Record why a lane was skipped; an exceeded budget ends the request when so configured."""
        self.failures.append(f"{lane.name}:{error.code}")
        self.errors.append(error)
        self.observer.record_skip(lane, error)
        if isinstance(error, BudgetExceeded) and self.fail_over_budget:
            self.observer.record_request("budget_exceeded")
            raise error

    def exhausted(self) -> RagError:
        """The error for a request no provider answered."""
        error: RagError
        if self.errors and all(isinstance(e, BudgetExceeded) for e in self.errors):
            self.observer.record_request("budget_exceeded")
            error = BudgetExceeded(
                "the daily LLM budget is spent and no cheaper provider could answer", tried=self.failures
            )
        else:
            self.observer.record_request("unavailable")
            error = ProviderUnavailable(
                f"no provider could answer ({', '.join(self.failures)})", tried=self.failures
            )
        error.__cause__ = self.errors[-1] if self.errors else None
        return error

    def response(self, lane: Lane, completion: Completion, text: str) -> LLMResponse:
        return LLMResponse(
            text=text,
            provider=lane.name,
            model=completion.model or lane.model,
            finish_reason=completion.finish_reason,
            usage=self.tally.usage(),
            attempts=self.tally.calls,
        )

    def finish(self, response: LLMResponse) -> LLMResponse:
        response.fallbacks = list(self.failures)
        response.latency_ms = (time.perf_counter() - self.started) * 1000
        self.observer.record_request("degraded" if self.failures else "answered")
        return response
