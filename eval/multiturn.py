"""The multi-turn golden set: follow-ups that refer back, each with the standalone question it stands for.

A follow-up ("What religion were they?") is searched badly as asked; the standalone question it
stands for ("What religion were the Normans?") is the ceiling a rewrite can reach. This set pairs
the two, with the earlier turn that makes the follow-up understandable and the follow-up's gold
evidence, so ``python -m eval.experiments followups`` can measure how much of the gap a rewriter
closes. It is built from the shipped development sets, deterministically (no model, no sampling):

- **SQuAD 2.0 dev** (the shared copy, every paragraph a document): for each article in
  ``SQUAD_ENTITIES``, its answerable questions that name the article's entity once, as a whole
  noun phrase ("the Normans", "Warsaw's", "the Scottish Parliament"; not as a modifier such as
  "Huguenot colonists" or part of a longer name such as "Warsaw Uprising"). Per article, the first
  such question of each paragraph, in document order, up to ``SQUAD_PER_ARTICLE``, becomes a
  follow-up: the entity is replaced by a pronoun (possessive: its/their; after an auxiliary or
  at the start: it/they; elsewhere: it/them; plural entities take they/them/their). Its earlier
  turn is the next question of the article (cyclically, in document order) that names the entity,
  comes from another paragraph and shares under half its words with the follow-up; the earlier
  turn's first gold answer is its answer.
- **FinanceBench** (the ``financebench-pages`` set: the evidence pages, one document each): the
  sentence of each question that names the company ("What is the FY2018 capital expenditure
  amount (in USD millions) for 3M?"; the instructions around it are dropped, as a person would
  in a chat) is the standalone question. *Pronoun* follow-ups: each company's core questions in
  file order, the company replaced by it/its as above, up to ``FINANCE_PER_COMPANY`` per
  company, the earlier turn being the company's next core question (cyclically). *Entity-swap*
  follow-ups: core questions that are the same but for the company and the period ("Does AMCOR
  have an improving gross margin profile as of FY2023?" / "... Boeing ... FY2022?"): the first
  is the earlier turn, the follow-up is "How about Boeing?" (or "What about Boeing in FY2022?"
  when the period differs), both ways round.

Each conversation keeps its follow-up's gold evidence (document ids as the source set names them)
and answers. The set is written as one JSON file (``DEFAULT_PATH``); ``python -m eval.multiturn``
rebuilds it, and ``tests/eval/test_multiturn.py`` checks the file is what the builder makes.
Licences: SQuAD 2.0 CC BY-SA 4.0; FinanceBench questions CC BY-NC 4.0 (filings are public).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from eval.golden import DEFAULT_DATASETS_DIR, REPO_ROOT, GoldenRecord, GoldenSet, load_set, load_squad
from rag.errors import InvalidGoldenSet
from rag.followup_rules import AUX, STOPWORDS, WH

FORMAT = "rag-multiturn/1"
DEFAULT_PATH = REPO_ROOT / "data" / "multiturn" / "followups.json"
SQUAD_FILE = "squad2_dev_cs224n_half/dev-v2.0.json"
SQUAD_SET_NAME = "squad2-dev-all-paragraphs"
"""The name the retrieval experiment gives the same file: the same collection serves both."""
FINANCE_SET = "financebench-pages"
SQUAD_PER_ARTICLE = 6
FINANCE_PER_COMPANY = 3
_MAX_OVERLAP = 0.5

SourceName = Literal["squad2", "financebench"]
Shape = Literal["pronoun", "possessive", "entity-swap"]


class Entity(BaseModel):
    """How an article's or a company's name is written in questions, and its pronouns' number."""

    model_config = ConfigDict(frozen=True)

    aliases: tuple[str, ...]
    plural: bool = False


SQUAD_ENTITIES: dict[str, Entity] = {
    "Normans": Entity(aliases=("Normans",), plural=True),
    "Huguenot": Entity(aliases=("Huguenots",), plural=True),
    "European_Union_law": Entity(aliases=("European Union law", "EU law")),
    "Yuan_dynasty": Entity(aliases=("Yuan dynasty",)),
    "Scottish_Parliament": Entity(aliases=("Scottish Parliament",)),
    "Islamism": Entity(aliases=("Islamism",)),
    "Warsaw": Entity(aliases=("Warsaw",)),
    "French_and_Indian_War": Entity(aliases=("French and Indian War",)),
    "Harvard_University": Entity(aliases=("Harvard University", "Harvard")),
}
"""SQuAD articles whose entity is a name (the others' topics are common nouns: "force")."""

FINANCE_COMPANIES: dict[str, Entity] = {
    "3M": Entity(aliases=("3M",)),
    "AMCOR": Entity(aliases=("AMCOR", "Amcor")),
    "AMD": Entity(aliases=("AMD",)),
    "AMERICANEXPRESS": Entity(aliases=("American Express", "AMEX")),
    "BESTBUY": Entity(aliases=("Best Buy",)),
    "BOEING": Entity(aliases=("Boeing",)),
    "COCACOLA": Entity(aliases=("Coca Cola",)),
    "FOOTLOCKER": Entity(aliases=("Foot Locker",)),
    "GENERALMILLS": Entity(aliases=("General Mills",)),
    "MGMRESORTS": Entity(aliases=("MGM Resorts", "MGM")),
    "MICROSOFT": Entity(aliases=("Microsoft",)),
    "NETFLIX": Entity(aliases=("Netflix",)),
    "PFIZER": Entity(aliases=("Pfizer",)),
}
"""FinanceBench companies by the prefix of their filings' names."""


class PriorTurn(BaseModel):
    """An earlier turn: what was asked, the gold answer given, and where it comes from."""

    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str = ""
    record: str


class Conversation(BaseModel):
    """Earlier turns, then the follow-up; ``standalone`` is the question the follow-up stands for."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: SourceName
    shape: Shape
    entity: str
    turns: list[PriorTurn] = Field(min_length=1)
    followup: str
    standalone: str
    record: str
    """The source set's record the follow-up was made from."""
    evidence: list[str] = Field(min_length=1)
    """Gold documents, named as the source set names them."""
    answers: list[str]


class SourceInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    what: str
    license: str


class MultiTurnSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    name: str = "followups"
    description: str
    sources: dict[str, SourceInfo]
    conversations: list[Conversation]


# --------------------------------------------------------------------------- pronouns

_WORD = re.compile(r"[\w&'’.-]+")


def _pattern(alias: str) -> re.Pattern[str]:
    """An alias as a whole name, with an optional "the" before it and a possessive ending after."""
    return re.compile(
        rf"(?<![\w-])(?P<the>[Tt]he\s+)?(?P<name>{re.escape(alias)})(?P<poss>['’]s?)?(?![\w-])",
        re.IGNORECASE,
    )


def _occurrences(question: str, entity: Entity) -> list[re.Match[str]]:
    found: list[re.Match[str]] = []
    for alias in entity.aliases:
        for match in _pattern(alias).finditer(question):
            if match.group("name")[0].isupper() and not any(_overlap(match, m) for m in found):
                found.append(match)
    return sorted(found, key=lambda m: m.start())


def _overlap(a: re.Match[str], b: re.Match[str]) -> bool:
    return a.start() < b.end() and b.start() < a.end()


def _word_before(text: str, index: int) -> str:
    words = _WORD.findall(text[:index])
    return words[-1] if words else ""


def _word_after(text: str, index: int) -> str:
    match = _WORD.match(text[index:].lstrip())
    gap = text[index:][: len(text[index:]) - len(text[index:].lstrip())]
    return match.group() if match and "," not in gap else ""


_CLAUSE_BREAK = re.compile(
    r"[,;:()/]|\b(?:and|or|but|that|which|who|whom|whose|when|where|while|if|because|after|before|"
    r"since|until|whereas|although|though)\b",
    re.IGNORECASE,
)
_PRONOUNS = {
    False: frozenset({"it", "its", "it's", "itself"}),
    True: frozenset({"they", "them", "their", "theirs", "themselves"}),
}
_DO_AUX = frozenset(
    ["do", "does", "did", "can", "could", "will", "would", "shall", "should", "may", "might", "must"]
)


def _first_clause(question: str, index: int) -> bool:
    """Whether ``index`` is in the question's first clause (after its opening question word):
    then nothing earlier in the question can be what the pronoun means."""
    head = question[:index]
    opening = re.match(r"\s*(?:who|whom|whose|which|where|when)\b", head, re.IGNORECASE)
    return _CLAUSE_BREAK.search(head, opening.end() if opening else 0) is None


def with_pronoun(question: str, entity: Entity) -> tuple[str, Shape] | None:
    """``question`` with its one mention of ``entity`` replaced by a pronoun, or ``None`` when the
    result would be unclear or ungrammatical: the mention is not a whole noun phrase (a modifier,
    part of a longer name, after "a"), is not the only one, sits after a clause break (something
    earlier in the question could then be what the pronoun means) or beside "and", "or" or "/",
    or the question already holds a pronoun of the same number."""
    found = _occurrences(question, entity)
    if len(found) != 1:
        return None
    match = found[0]
    if _PRONOUNS[entity.plural] & {w.lower() for w in _WORD.findall(question)}:
        return None
    if not _first_clause(question, match.start()):
        return None
    before = _word_before(question, match.start())
    after = _word_after(question, match.end())
    if before.lower() in ("a", "an", "the", "and", "or") or after.lower() in ("and", "or"):
        return None
    if question[match.end() : match.end() + 1] == "/" or question[match.start() - 1 : match.start()] == "/":
        return None
    if before[:1].isupper() and before.lower() not in WH | AUX and match.start() > 0:
        return None  # part of a longer name: "New Warsaw"
    if after[:1].isupper():
        return None  # "Warsaw Uprising", "Harvard Business School"
    possessive = match.group("poss") is not None
    subject = before == "" or before.lower() in WH or before.lower() in _DO_AUX
    subject = subject or (before.lower() in AUX and (not after or after.lower() in STOPWORDS))
    if not possessive and not subject and after and after.lower() not in STOPWORDS:
        return None  # a modifier: "Huguenot colonists", "Which Best Buy product category"
    if not possessive and before.lower() in AUX - _DO_AUX and after and after.lower() not in STOPWORDS:
        return None  # "Where is Harvard stadium located?"
    if possessive:
        pronoun, shape = ("their" if entity.plural else "its"), "possessive"
    elif subject:
        pronoun, shape = ("they" if entity.plural else "it"), "pronoun"
    else:
        pronoun, shape = ("them" if entity.plural else "it"), "pronoun"
    if match.start() == 0 or question[: match.start()].rstrip().endswith((".", "?", "!", ":")):
        pronoun = pronoun.capitalize()
    rewritten = question[: match.start()] + pronoun + question[match.end() :]
    return re.sub(r"\s+", " ", rewritten).strip(), shape  # type: ignore[return-value]


def _content(text: str) -> set[str]:
    return {w.lower().strip(".'’") for w in _WORD.findall(text) if w.lower() not in STOPWORDS}


def _similar(a: str, b: str) -> bool:
    x, y = _content(a), _content(b)
    return bool(x and y) and len(x & y) / len(x | y) >= _MAX_OVERLAP


# --------------------------------------------------------------------------- SQuAD


def _squad_candidates(golden: GoldenSet) -> dict[str, list[tuple[GoldenRecord, str]]]:
    """Answerable records by article title, in file order, with each one's paragraph document."""
    titles = {d.id: d.title or "" for d in golden.documents}
    by_title: dict[str, list[tuple[GoldenRecord, str]]] = {}
    for record in golden.records:
        if record.answerable and record.evidence:
            doc = record.evidence[0].doc
            by_title.setdefault(titles[doc], []).append((record, doc))
    return by_title


def squad_conversations(golden: GoldenSet, per_article: int = SQUAD_PER_ARTICLE) -> list[Conversation]:
    """Pronoun follow-ups over the SQuAD articles of ``SQUAD_ENTITIES`` (see the module's docstring)."""
    out: list[Conversation] = []
    by_title = _squad_candidates(golden)
    for title, entity in SQUAD_ENTITIES.items():
        records = by_title.get(title, [])
        naming = [(r, doc) for r, doc in records if _occurrences(r.question, entity)]
        chosen: list[tuple[GoldenRecord, str, str, Shape]] = []
        seen_docs: set[str] = set()
        for record, doc in naming:
            made = with_pronoun(_normalise(record.question), entity)
            if made is None or doc in seen_docs or len(_content(made[0])) < 2:
                continue
            seen_docs.add(doc)
            chosen.append((record, doc, *made))
            if len(chosen) == per_article:
                break
        for n, (record, doc, followup, shape) in enumerate(chosen, 1):
            start = next(i for i, (r, _) in enumerate(naming) if r.id == record.id)
            prior = next(
                (
                    naming[(start + k) % len(naming)][0]
                    for k in range(1, len(naming))
                    if naming[(start + k) % len(naming)][1] != doc
                    and not _similar(naming[(start + k) % len(naming)][0].question, record.question)
                ),
                None,
            )
            if prior is None:
                continue
            out.append(
                Conversation(
                    id=f"squad2-{title.lower().replace('_', '-')}-{n:02d}",
                    source="squad2",
                    shape=shape,
                    entity=entity.aliases[0],
                    turns=[
                        PriorTurn(
                            question=_normalise(prior.question),
                            answer=prior.answers[0] if prior.answers else "",
                            record=prior.id,
                        )
                    ],
                    followup=followup,
                    standalone=_normalise(record.question),
                    record=record.id,
                    evidence=sorted({ev.doc for ev in record.evidence}),
                    answers=list(record.answers),
                )
            )
    return out


# --------------------------------------------------------------------------- FinanceBench

_SENTENCES = re.compile(r"(?<=[.?!:])\s+")
_PERIOD = re.compile(r"\b(?:FY\s?\d{4}|Q[1-4]\s?(?:of\s+)?(?:FY\s?)?'?\d{4}|(?:19|20)\d{2})\b")


def _company(record: GoldenRecord) -> str | None:
    prefix = record.evidence[0].doc.split("_")[0].upper() if record.evidence else ""
    return prefix if prefix in FINANCE_COMPANIES else None


_PREAMBLE = re.compile(
    r"^[^?]*?,\s+(?=(?:what|which|how|who|when|where|is|are|was|were|has|have|does|did)\b)", re.I
)


def core_question(question: str, entity: Entity) -> str | None:
    """The sentence of a FinanceBench question that names the company, as a chat would ask it:
    its instructions ("Answer in USD millions.") and preamble ("According to the cash flow
    statement, what is...") dropped."""
    for sentence in _SENTENCES.split(question.strip()):
        if _occurrences(sentence, entity):
            sentence = _PREAMBLE.sub("", sentence.strip())
            if sentence.endswith(":") or not _occurrences(sentence, entity):
                return None
            return _normalise(sentence[:1].upper() + sentence[1:])
    return None


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _template(question: str, entity: Entity) -> str:
    text = question
    for match in reversed(_occurrences(question, entity)):
        text = text[: match.start()] + "<company>" + text[match.end() :]
    text = _PERIOD.sub("<period>", text)
    text = re.sub(r"\bthe <period>", "<period>", text)
    return re.sub(r"\s+", " ", text).strip().lower()


def finance_conversations(golden: GoldenSet, per_company: int = FINANCE_PER_COMPANY) -> list[Conversation]:
    """Pronoun and entity-swap follow-ups over FinanceBench (see the module's docstring)."""
    cores: dict[str, list[tuple[GoldenRecord, str]]] = {}
    for record in golden.records:
        company = _company(record)
        if company is None:
            continue
        core = core_question(record.question, FINANCE_COMPANIES[company])
        if core is not None:
            cores.setdefault(company, []).append((record, core))
    out: list[Conversation] = []
    for company, items in cores.items():
        entity = FINANCE_COMPANIES[company]
        made = 0
        for i, (record, core) in enumerate(items):
            result = with_pronoun(core, entity)
            if result is None or len(items) < 2 or made == per_company:
                continue
            prior, prior_core = items[(i + 1) % len(items)]
            made += 1
            out.append(
                _finance(
                    f"financebench-{company.lower()}-{made:02d}", entity, prior, prior_core, record, core
                ).model_copy(update={"followup": result[0], "shape": result[1]})
            )
    out += _swaps(cores)
    return out


def _finance(
    cid: str, entity: Entity, prior: GoldenRecord, prior_core: str, record: GoldenRecord, core: str
) -> Conversation:
    return Conversation(
        id=cid,
        source="financebench",
        shape="pronoun",
        entity=entity.aliases[0],
        turns=[
            PriorTurn(question=prior_core, answer=prior.answers[0] if prior.answers else "", record=prior.id)
        ],
        followup=core,
        standalone=core,
        record=record.id,
        evidence=sorted({ev.doc for ev in record.evidence}),
        answers=list(record.answers),
    )


def _swaps(cores: dict[str, list[tuple[GoldenRecord, str]]]) -> list[Conversation]:
    """ "How about Boeing?" after the same question about AMCOR, for every pair of such questions."""
    groups: dict[str, list[tuple[str, GoldenRecord, str]]] = {}
    for company, items in cores.items():
        for record, core in items:
            groups.setdefault(_template(core, FINANCE_COMPANIES[company]), []).append((company, record, core))
    out: list[Conversation] = []
    for members in groups.values():
        for a_company, a_record, a_core in members:
            for b_company, b_record, b_core in members:
                if a_company == b_company:
                    continue
                b_entity = FINANCE_COMPANIES[b_company]
                name = _occurrences(b_core, b_entity)[0].group("name")
                a_periods, b_periods = _PERIOD.findall(a_core), _PERIOD.findall(b_core)
                if a_periods == b_periods:
                    followup = f"How about {name}?"
                elif len(b_periods) == 1:
                    followup = f"What about {name} in {b_periods[0]}?"
                else:
                    continue
                cid = f"financebench-swap-{a_company.lower()}-{b_company.lower()}"
                out.append(
                    _finance(
                        cid, FINANCE_COMPANIES[a_company], a_record, a_core, b_record, b_core
                    ).model_copy(
                        update={"followup": followup, "shape": "entity-swap", "entity": b_entity.aliases[0]}
                    )
                )
    return out


# --------------------------------------------------------------------------- the set


def source_sets(datasets_dir: Path | None = None) -> dict[SourceName, GoldenSet]:
    """The golden sets the conversations come from; their documents make the collections searched."""
    datasets = datasets_dir or DEFAULT_DATASETS_DIR
    return {
        "squad2": load_squad(datasets / SQUAD_FILE, name=SQUAD_SET_NAME),
        "financebench": load_set(FINANCE_SET, datasets_dir=datasets),
    }


def build_multiturn(sources: dict[SourceName, GoldenSet]) -> MultiTurnSet:
    """The set, from the source sets (``source_sets``); the same sources give the same set."""
    conversations = squad_conversations(sources["squad2"]) + finance_conversations(sources["financebench"])
    ids = [c.id for c in conversations]
    if len(set(ids)) != len(ids):
        raise InvalidGoldenSet("the multi-turn builder made two conversations with the same id")
    return MultiTurnSet(
        description=(__doc__ or "").split("\n\n")[0].strip()
        + " Built by `python -m eval.multiturn`; eval/multiturn.py says how.",
        sources={
            "squad2": SourceInfo(
                what=f"SQuAD 2.0 dev (datasets:{SQUAD_FILE}), every paragraph a document ({SQUAD_SET_NAME})",
                license="CC BY-SA 4.0",
            ),
            "financebench": SourceInfo(
                what=f"FinanceBench's evidence pages, one document each (the shipped {FINANCE_SET} set)",
                license="CC BY-NC 4.0 (questions); filings are public",
            ),
        },
        conversations=conversations,
    )


def dumps(multiturn: MultiTurnSet) -> str:
    """The file's exact text: the same set always writes the same bytes."""
    return json.dumps(multiturn.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n"


def load_multiturn(path: Path = DEFAULT_PATH) -> MultiTurnSet:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidGoldenSet(f"{path} does not exist: run python -m eval.multiturn") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidGoldenSet(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InvalidGoldenSet(f"{path} is not a {FORMAT} set")
    return MultiTurnSet.model_validate(payload)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.multiturn", description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=str(DEFAULT_DATASETS_DIR), help="the shared datasets folder")
    parser.add_argument("--out", default=str(DEFAULT_PATH))
    args = parser.parse_args(argv)
    built = build_multiturn(source_sets(Path(args.datasets)))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps(built), encoding="utf-8")
    shapes: dict[str, int] = {}
    for c in built.conversations:
        shapes[f"{c.source}/{c.shape}"] = shapes.get(f"{c.source}/{c.shape}", 0) + 1
    print(f"wrote {out}: {len(built.conversations)} conversations {shapes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
