"""Follow-ups made standalone before retrieval: the offline rules, and the LLM rewriter against the
fake provider (a real process speaking the OpenAI format), with its fallbacks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from rag.followups import (
    PROMPT_ID,
    PROMPT_VERSION,
    FollowupRewriter,
    LlmRewriter,
    NoRewriter,
    OfflineRewriter,
    Rewrite,
    Turn,
    build_rewrite_request,
    make_rewriter,
    refers_back,
)
from rag.llm.gateway import Gateway
from rag.llm.schema import ABSTENTION_SENTENCE
from rag.settings import Settings
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.helpers import FAST, openai_entry, write_toml

ADOBE = [Turn("What was Adobe's revenue in 2021?")]


def offline(question: str, history: list[Turn], turns: int = 3) -> Rewrite:
    return asyncio.run(OfflineRewriter(turns).rewrite(question, history))


# --------------------------------------------------------------------------- the offline rules


@pytest.mark.parametrize(
    ("history", "question", "expected"),
    [
        (ADOBE, "And in 2022?", "What was Adobe's revenue in 2022?"),
        (ADOBE, "and the year before?", "What was Adobe's revenue in 2020?"),
        (ADOBE, "what about its margin?", "What about Adobe's margin in 2021?"),
        (ADOBE, "who founded it?", "who founded Adobe?"),
        (ADOBE, "How about Amcor?", "What was Amcor's revenue in 2021?"),
        (ADOBE, "What did they spend on R&D?", "What did Adobe spend on R&D in 2021?"),
        (ADOBE, "And the operating income?", "What about the operating income for Adobe in 2021?"),
        (ADOBE, "What happened in that year?", "What happened in 2021?"),
        ([Turn("Tell me about the Normans.")], "Where is their homeland?", "Where is the Normans' homeland?"),
        (
            [Turn("When were the Normans in Normandy?")],
            "What religion were they?",
            "What religion were the Normans?",
        ),
        (
            [Turn("On what river does Warsaw stand?")],
            "How many people live there?",
            "How many people live in Warsaw?",
        ),
        (
            [Turn("On what river does Warsaw stand?")],
            "How far is it from the Baltic Sea?",
            "How far is Warsaw from the Baltic Sea?",
        ),
        ([Turn("What is photosynthesis?")], "Where does it happen?", "Where does photosynthesis happen?"),
        (
            [Turn("What is the Chinese name for the Yuan dynasty?")],
            "What was it called in Mongolian?",
            "What was the Yuan dynasty called in Mongolian?",
        ),
        (
            [Turn("Does AMCOR have an improving gross margin profile as of FY2023?")],
            "What about Boeing in FY2022?",
            "Does Boeing have an improving gross margin profile as of FY2022?",
        ),
        (
            [Turn("What is the FY2018 capital expenditure amount (in USD millions) for 3M?")],
            "Is it a capital-intensive business based on FY2022 data?",
            "Is 3M a capital-intensive business based on FY2022 data?",
        ),
    ],
)
def test_follow_ups_become_standalone(history: list[Turn], question: str, expected: str) -> None:
    rewrite = offline(question, history)
    assert rewrite == Rewrite(expected, True, "offline", rewrite.reason)
    assert rewrite.reason


def test_a_person_pronoun_takes_a_short_answer_and_otherwise_keeps_the_previous_question() -> None:
    answered = offline("When did he die?", [Turn("Who wrote Hamlet?", answer="William Shakespeare")])
    assert answered.query == "When did William Shakespeare die?"
    # the antecedent is the unknown answer: the rules cannot know it, so retrieval sees both questions
    unanswered = offline("When did he die?", [Turn("Who wrote Hamlet?")])
    assert unanswered.query == "Who wrote Hamlet? When did he die?" and unanswered.rewritten
    assert "prepended" in unanswered.reason


def test_a_short_answer_names_the_person_even_when_the_question_names_nobody() -> None:
    history = [Turn("who wrote pride and prejudice?", answer="Jane Austen.")]
    assert offline("When did she die?", history).query == "When did Jane Austen die?"
    assert offline("What else did she write?", [Turn("who wrote pride and prejudice?")]).query == (
        "who wrote pride and prejudice? What else did she write?"
    )


def test_a_fragment_it_cannot_resolve_gets_the_previous_question() -> None:
    assert offline("Why?", ADOBE).query == "What was Adobe's revenue in 2021? Why?"


@pytest.mark.parametrize(
    "question",
    [
        "What was Adobe's revenue in 2021?",
        "Who wrote Hamlet?",
        "Is there a cure for COVID-19?",
        "What is the name of the river that flows through Paris?",
        "When did Shakespeare write Hamlet and when did he die?",
        "Has Microsoft increased its debt on balance sheet between FY2023 and the FY2022 period?",
        "What goal does Islamism have when it comes to society and government?",
        "The word imperialism has it's origins in which ancient language?",
        "Who moved his court from Warsaw to Krakow in 1596?",
        "How long does it take to know the outcome of a division?",
        "Is it true that the Normans came from Scandinavia?",
        "How long has the U.S. government been engaged in efforts to counter Islamism?",
        "Tell me about Amcor.",
        "What is photosynthesis?",
        "Were there any board member nominees who had more votes against them than the others?",
    ],
)
def test_standalone_questions_are_not_rewritten(question: str) -> None:
    assert refers_back(question) is None
    assert offline(question, ADOBE) == Rewrite(question, False, "none")


@pytest.mark.parametrize(
    ("question", "why"),
    [
        ("And in 2022?", "connective"),
        ("What about Amcor?", "connective"),
        ("Who founded it?", "'it'"),
        ("What did they spend on R&D?", "'they'"),
        ("Where is their homeland?", "'their'"),
        ("When did he die?", "'he'"),
        ("What happened there?", "'there'"),
        ("What year was that?", "'that'"),
        ("In 2019?", "short"),
        ("Amcor?", "short"),
    ],
)
def test_references_back_are_detected(question: str, why: str) -> None:
    assert why in (refers_back(question) or "")


def test_without_history_nothing_is_rewritten() -> None:
    rewrite = offline("And in 2022?", [])
    assert (rewrite.query, rewrite.rewritten, rewrite.method) == ("And in 2022?", False, "none")
    assert "no earlier turn" in rewrite.reason


def test_each_turn_counts_with_its_retrieval_query_and_only_recent_turns_count() -> None:
    history = [
        Turn("What was Adobe's revenue in 2021?"),
        Turn("How about Amcor?", retrieval_query="What was Amcor's revenue in 2021?"),
    ]
    assert offline("And in 2022?", history).query == "What was Amcor's revenue in 2022?"
    older = [Turn("Tell me about the Normans."), Turn("What is photosynthesis?")]
    assert offline("Where is their homeland?", older).query == "Where is the Normans' homeland?"
    assert offline("Where is their homeland?", older, turns=1).query == "Where is photosynthesis' homeland?"
    assert not offline("Where is their homeland?", older, turns=0).rewritten


# --------------------------------------------------------------------------- the LLM rewriter


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeLLMServer]:
    server = FakeLLMServer.start(tmp_path_factory.mktemp("fake-llm") / "server.log")
    yield server
    server.stop()


@pytest.fixture
def server(fake: FakeLLMServer) -> FakeLLMServer:
    fake.reset()
    return fake


GatewayFactory = Callable[..., tuple[Gateway, Settings]]


@pytest.fixture
def gateway_for(
    server: FakeLLMServer, make_settings: Callable[..., Settings], tmp_path: Path
) -> Iterator[GatewayFactory]:
    built: list[Gateway] = []

    def build(*, last_resort: bool = True, **overrides: Any) -> tuple[Gateway, Settings]:
        providers = write_toml(tmp_path / "providers.toml", {"providers.fake": openai_entry(server)})
        settings = make_settings(**{**FAST, "providers_file": providers, "llm_chain": "fake", **overrides})
        gateway = Gateway.from_settings(
            settings, registry=CollectorRegistry(), last_resort=last_resort, environ={}
        )
        built.append(gateway)
        return gateway, settings

    yield build
    for gateway in built:
        asyncio.run(gateway.aclose())


def llm(gateway: Gateway, settings: Settings) -> LlmRewriter:
    rewriter = make_rewriter(settings, gateway)
    assert isinstance(rewriter, LlmRewriter)
    return rewriter


def test_the_llm_rewrites_a_follow_up(server: FakeLLMServer, gateway_for: GatewayFactory) -> None:
    server.mode(default={"kind": "ok", "text": "Standalone question: What was Adobe's revenue in 2022?"})
    rewriter = llm(*gateway_for())
    history = [Turn("What was Adobe's revenue in 2021?", answer="$15.79 billion [1].")]
    rewrite = asyncio.run(rewriter.rewrite("And in 2022?", history))
    assert rewrite == Rewrite("What was Adobe's revenue in 2022?", True, "llm", rewrite.reason)
    [call] = server.calls()
    body = call["body"]
    assert body["model"] == "fake-model"
    assert (body.get("max_tokens") or body.get("max_completion_tokens")) == 64
    prompt = body["messages"][-1]["content"]
    assert "What was Adobe's revenue in 2021?" in prompt and "$15.79 billion" in prompt
    assert "And in 2022?" in prompt


def test_a_standalone_question_makes_no_llm_call(server: FakeLLMServer, gateway_for: GatewayFactory) -> None:
    rewriter = llm(*gateway_for())
    rewrite = asyncio.run(rewriter.rewrite("What was Amcor's revenue in 2022?", ADOBE))
    assert rewrite == Rewrite("What was Amcor's revenue in 2022?", False, "none")
    assert asyncio.run(rewriter.rewrite("And in 2022?", [])).method == "none"  # nothing to resolve with
    assert server.count() == 0


@pytest.mark.parametrize(
    "behaviour",
    [
        {"kind": "status", "status": 500},
        {"kind": "malformed"},
        {"kind": "ok", "text": ""},
        {"kind": "ok", "text": "The Eiffel Tower is in Paris [1]."},
        {"kind": "ok", "text": ABSTENTION_SENTENCE},
        {"kind": "ok", "text": "What was Adobe's revenue " + "and more " * 80},
        {"kind": "length", "text": "What was Adobe's"},
    ],
    ids=["server-error", "malformed", "empty", "an-answer", "abstention", "too-long", "cut-off"],
)
def test_any_failure_falls_back_to_the_offline_rewrite(
    server: FakeLLMServer, gateway_for: GatewayFactory, behaviour: dict[str, Any]
) -> None:
    server.mode(default=behaviour)
    rewriter = llm(*gateway_for(last_resort=False))
    rewrite = asyncio.run(rewriter.rewrite("And in 2022?", ADOBE))
    assert (rewrite.query, rewrite.rewritten, rewrite.method) == (
        "What was Adobe's revenue in 2022?",
        True,
        "offline",
    )
    assert rewrite.reason.startswith("LLM rewrite unusable")
    assert server.count() >= 1


def test_the_extractive_last_resort_is_not_taken_for_a_rewrite(
    server: FakeLLMServer, gateway_for: GatewayFactory
) -> None:
    """As the service builds it, the chain ends with the extractive answerer: its reply is no rewrite."""
    server.mode(default={"kind": "status", "status": 503})
    rewriter = llm(*gateway_for(last_resort=True))
    rewrite = asyncio.run(rewriter.rewrite("What did they spend on R&D?", ADOBE))
    assert (rewrite.query, rewrite.method) == ("What did Adobe spend on R&D in 2021?", "offline")
    assert "extractive" in rewrite.reason


def test_a_slow_provider_is_given_up_on_in_time(server: FakeLLMServer, gateway_for: GatewayFactory) -> None:
    server.mode(default={"kind": "hang", "hang_s": 30})
    rewriter = llm(*gateway_for(followup_rewrite_timeout_s=0.5))
    started = time.perf_counter()
    rewrite = asyncio.run(rewriter.rewrite("And in 2022?", ADOBE))
    assert time.perf_counter() - started < 3
    assert (rewrite.query, rewrite.method) == ("What was Adobe's revenue in 2022?", "offline")
    assert "no reply within 0.5 s" in rewrite.reason


def test_rewrites_are_cached_by_the_gateway(server: FakeLLMServer, gateway_for: GatewayFactory) -> None:
    server.mode(default={"kind": "ok", "text": "What was Adobe's revenue in 2022?"})
    rewriter = llm(*gateway_for(cache_enabled=True))

    async def twice() -> list[Rewrite]:
        return [await rewriter.rewrite("And in 2022?", ADOBE) for _ in range(2)]

    first, second = asyncio.run(twice())
    assert first == second and first.method == "llm"
    assert server.count() == 1


def test_the_prompt_has_its_own_id_and_version() -> None:
    request = build_rewrite_request("And in 2022?", ADOBE, max_tokens=64)
    assert (
        (request.prompt_id, request.prompt_version)
        == (PROMPT_ID, PROMPT_VERSION)
        == ("followup-rewrite", "1")
    )
    assert request.max_tokens == 64 and request.sources == [] and not request.json_mode


# --------------------------------------------------------------------------- choosing one


def test_make_rewriter_follows_the_settings_and_the_chain(
    make_settings: Callable[..., Settings], gateway_for: GatewayFactory
) -> None:
    gateway, with_model = gateway_for()
    assert isinstance(make_rewriter(with_model, gateway), LlmRewriter)
    offline_only = with_model.model_copy(update={"followup_rewrite": "offline"})
    assert isinstance(make_rewriter(offline_only, gateway), OfflineRewriter)
    off = with_model.model_copy(update={"followup_rewrite": "off"})
    assert isinstance(make_rewriter(off, gateway), NoRewriter)
    extractive = make_settings()  # the default chain: the extractive answerer only
    assert isinstance(make_rewriter(extractive, gateway), OfflineRewriter)
    assert isinstance(make_rewriter(with_model, None), OfflineRewriter)


# --------------------------------------------------------------------------- the contract

Implementation = Callable[[GatewayFactory], FollowupRewriter]
IMPLEMENTATIONS: dict[str, Implementation] = {
    "offline": lambda _g: OfflineRewriter(),
    "llm": lambda g: llm(*g()),
    "none": lambda _g: NoRewriter(),
}


@pytest.mark.parametrize("name", sorted(IMPLEMENTATIONS))
def test_every_rewriter_keeps_the_contract(name: str, gateway_for: GatewayFactory) -> None:
    rewriter = IMPLEMENTATIONS[name](gateway_for)
    standalone = asyncio.run(rewriter.rewrite("What was Amcor's revenue in 2022?", ADOBE))
    assert isinstance(standalone, Rewrite)
    assert (standalone.query, standalone.rewritten) == ("What was Amcor's revenue in 2022?", False)
    follow_up = asyncio.run(rewriter.rewrite("And in 2022?", ADOBE))
    assert isinstance(follow_up, Rewrite) and follow_up.query.strip()
    assert follow_up.rewritten == (follow_up.query != "And in 2022?")
    assert follow_up.method in ("none", "offline", "llm")
