"""The offline rules behind follow-up rewriting: whether a question refers back, and what to.

``refers_back`` is the detector both rewriters share: a leading "and" / "what about" / "how
about" / "what of", a pronoun or demonstrative with no antecedent in its own clause (it, its,
they, them, their, this, that, these, those, he, she, his, her, there), or an ellipsis (a very
short question with no content word of its own: "In 2022?", "Why?", "Amcor?").

The offline rules resolve the reference against the recent turns (each turn's
``retrieval_query`` when set, else its question): names (capitalised words and runs of them,
"3M", "AMCOR", "the French and Indian War"), periods (2021, FY2022, Q2 2023) and, for a
definition question, its topic ("What is photosynthesis?"). What they cannot do, by design:

- know an answer the conversation does not contain: "Who wrote Hamlet?" + "When did he die?"
  resolves "he" only when the previous answer is given and short ("William Shakespeare");
  without it the previous question is prepended instead (retrieval then sees both);
- choose between two names by meaning: a pronoun takes the previous query's first name of a
  matching number ("they" prefers "the Normans" to "Normandy"; "it" the reverse), a person
  pronoun a person-like name; "What is the capital of France?" + "What is its population?"
  asks for France's population;
- resolve lower-case noun phrases outside definition questions ("How does the immune system
  work?" + "What attacks it?"): the previous question is prepended instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Turn:
    question: str
    answer: str = ""
    retrieval_query: str | None = None
    """The standalone query the turn was retrieved with (its own question when not rewritten)."""

    @property
    def query(self) -> str:
        return (self.retrieval_query or self.question).strip()


# --------------------------------------------------------------------------- words

_WORD = re.compile(r"[^\W_][\w&]*(?:[.'’\-][^\W_][\w&]*)*(?:['’](?![^\W_]))?")
_SENTENCE_BREAK = re.compile(r"[.?!:;]+(?:\s+|$)")
_ABBREVIATION = re.compile(r"\b(?:[A-Za-z]\.){2,}|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|No|vs|Inc|Co|Corp|Ltd|etc)\.")
_PERIOD = re.compile(
    r"\b(?:(?:FY|fiscal\s+year|fiscal)\s?'?\d{2,4}"
    r"|Q[1-4]\s?(?:of\s+)?(?:FY\s?)?'?\d{2,4}"
    r"|(?:Q[1-4]|H[12])\b"
    r"|(?:1[6-9]|20)\d{2})\b",
    re.IGNORECASE,
)
_YEAR_DIGITS = re.compile(r"(?:1[6-9]|20)\d{2}|(?<=FY)\d{2}\b|(?<=FY\s)\d{2}\b|(?<=')\d{2}\b")
_RELATIVE_YEAR = re.compile(
    r"\b(?:the\s+)?(?:(?P<before>year\s+before|previous\s+year|prior\s+year|preceding\s+year|"
    r"last\s+year|year\s+earlier|a\s+year\s+earlier)|(?P<after>year\s+after|next\s+year|"
    r"following\s+year|a\s+year\s+later|year\s+later))\b",
    re.IGNORECASE,
)
_LEAD = re.compile(
    r"^\s*(?:(?:and|but|also|so|or)\b[\s,]*)?(?:(?:what|how)\s+about|what\s+of)\b[\s,]*"
    r"|^\s*(?:and|but|also|so|or)\b[\s,]*",
    re.IGNORECASE,
)
_TOPIC = re.compile(
    r"^\s*(?:tell\s+me\s+(?:more\s+)?about|what\s+(?:is|are|was|were)|who\s+(?:is|are|was|were)|"
    r"describe|explain|define)\s+(?P<topic>.+?)\s*[?.!]*\s*$",
    re.IGNORECASE,
)


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


WH = _set("what which who whom whose when where why how")
AUX = _set(
    "is are was were be been being am do does did done have has had can could will would shall should "
    "may might must 's"
)
_BE = _set("is are was were be been being am 's")
_DO_AUX = _set("do does did can could will would shall should may might must")
PREPOSITIONS = _set(
    "about above across after against along among around as at before behind below beneath beside "
    "between beyond by despite during except for from in inside into like near of off on onto out "
    "outside over past per since through throughout till to toward towards under until up upon via "
    "with within without"
)
_CLAUSE_BREAKS = _set(
    "and but or because since while when whereas although though if unless until after before that "
    "which who whom where so"
)
_PERSONAL = _set("it they them he she him")
_POSSESSIVE = _set("its their theirs his her hers")
_DEMONSTRATIVE = _set("this that these those")
_PLURAL_PRONOUNS = _set("they them their theirs these those")
_PERSON_PRONOUNS = _set("he she him his her hers")
_REFERRING = _PERSONAL | _POSSESSIVE | _DEMONSTRATIVE | {"there"}
STOPWORDS = _set(
    "a an the and or but nor so yet of in on at to for from by with about as into than then there "
    "here this that these those it its they them their theirs he she him his her hers we us our you "
    "your i me my mine not no yes any some all each every both either neither other another such "
    "very more most less least much many few also only just even still too again ever once there "
    "what which who whom whose when where why how is are was were be been being am do does did "
    "have has had can could will would shall should may might must up down out over under one own "
    "same if whether while"
)
_IMPERATIVES = _set(
    "tell describe explain define list give show name summarize summarise compare find assume answer "
    "provide base please round use calculate compute consider according"
)
_PERIOD_WORDS = _set(
    "year years quarter quarters month months period periods fiscal fy time date day decade century "
    "before after earlier later previous prior next following last preceding ago"
)
_REF_NOUNS = _set(
    "year quarter period time date month day decade century company firm business corporation "
    "city country place region state war battle dynasty empire group people person man woman party "
    "organisation organization team one"
)
_TIME_NOUNS = _set("year quarter period time date month day")
_NAME_JOINERS = frozenset({"of", "and", "de", "the", "&", "for", "du", "von", "van"})
_NAME_HEADS = _set(
    "dynasty law empire war river university college company corporation group party army church "
    "kingdom republic city region province state island islands mountains sea ocean lake bay treaty "
    "act building museum parliament council court family language"
)
_NOT_PERSON = _NAME_HEADS | _set(
    "inc corp ltd plc co bank union university resorts express airlines motors mills buy"
)
_ABBREVIATIONS = _set(
    "usd eur gbp ebitda ebitdar ebit cogs ppne ppe roa roe roic ccc dio dso dpo fcf gaap ceo cfo coo eps "
    "p&l m&a r&d fx sec ipo yoy qoq ttm capex opex sg&a i ii iii q1 q2 q3 q4 h1 h2 fy ai "
    "covid-19 covid sars-cov-2 dna rna"
)
_MONTHS = _set(
    "january february march april may june july august september october november december monday "
    "tuesday wednesday thursday friday saturday sunday"
)
_QUANTITY_CUES = _set(
    "much many revenue revenues sales income spend spent spending cost costs expense expenses margin "
    "margins profit profits earnings ebitda cash debt dividend dividends assets liabilities capex eps "
    "ratio rate growth percentage percent inventory inventories capital"
)
_SHORT_ANSWER_WORDS = 12
_ELLIPSIS_WORDS = 4


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def possessive(self) -> bool:
        return self.text.endswith(("'s", "’s", "'", "’")) and len(self.text) > 2

    @property
    def base(self) -> str:
        """The word without its possessive ending ("Adobe's" -> "Adobe", "Normans'" -> "Normans")."""
        for ending in ("'s", "’s", "'", "’"):
            if self.text.endswith(ending) and len(self.text) > len(ending) + 1:
                return self.text[: -len(ending)]
        return self.text

    @property
    def key(self) -> str:
        return self.base.lower()


def _words(text: str) -> list[_Word]:
    return [_Word(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _unabbreviated(text: str) -> str:
    """``text`` with the dots that end abbreviations ("U.S.", "Inc.") blanked: not sentence ends."""
    return _ABBREVIATION.sub(lambda m: m.group()[:-1] + " ", text)


def _sentence_starts(text: str) -> set[int]:
    """Character offsets where a sentence (or a clause after a colon) begins."""
    starts = {len(text) - len(text.lstrip())}
    starts.update(m.end() for m in _SENTENCE_BREAK.finditer(_unabbreviated(text)))
    return starts


def _is_content(word: _Word) -> bool:
    key = word.key
    return (
        key not in STOPWORDS
        and key not in _IMPERATIVES
        and key not in _PERIOD_WORDS
        and not _PERIOD.fullmatch(word.base)
        and not key.isdigit()
        and any(c.isalpha() for c in key)
    )


def _capitalised(word: _Word) -> bool:
    first = word.text[0]
    return first.isupper() or (first.isdigit() and any(c.isupper() for c in word.text))


def _plural(text: str) -> bool:
    last = text.split()[-1].lower()
    return len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is"))


# --------------------------------------------------------------------------- names and periods


@dataclass(frozen=True, slots=True)
class _Name:
    """A name found in a text: "the Normans" (article kept), "Adobe", "the French and Indian War"."""

    text: str
    """The name without article or possessive ending."""
    article: bool
    start: int
    """Where it starts in the text, article included; ``end`` is after the possessive ending."""
    end: int
    possessive: bool
    modifier: bool = False
    """Followed by a common noun ("the Chinese name", "the U.S. government"): likely an adjective
    or a modifier, so a weaker antecedent than a name standing alone."""

    @property
    def phrase(self) -> str:
        return f"the {self.text}" if self.article else self.text

    @property
    def plural(self) -> bool:
        return _plural(self.text)

    @property
    def person_like(self) -> bool:
        parts = self.text.split()
        return (
            len(parts) >= 2
            and not self.article
            and all(p[0].isupper() and not p.isupper() for p in parts)
            and not any(p.lower() in _NOT_PERSON for p in parts)
        )

    def as_possessive(self) -> str:
        return f"{self.phrase}'" if self.plural or self.text.endswith("s") else f"{self.phrase}'s"


def _name_candidate(word: _Word) -> bool:
    key = word.key
    return (
        _capitalised(word)
        and key not in _ABBREVIATIONS
        and key not in _MONTHS
        and key != "i"
        and not _PERIOD.fullmatch(word.base)
    )


def _names(text: str) -> list[_Name]:
    """Capitalised words and runs of them, in order of appearance.

    A sentence's first word is a name only if it cannot be an ordinary word there: written in
    capitals or with a digit ("AMCOR", "3M"), possessive, followed by another capitalised word, or
    the whole sentence is a fragment of three words at most ("Amcor?")."""
    words = _words(text)
    starts = _sentence_starts(text)
    names: list[_Name] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not _name_candidate(word) or not _name_may_start(words, i, starts):
            i += 1
            continue
        j = i + 1
        while j < len(words) and not words[j - 1].possessive:
            nxt = words[j]
            if _name_candidate(nxt) and not _sentence_start(nxt, starts):
                j += 1
            elif (
                nxt.lower in _NAME_JOINERS
                and j + 1 < len(words)
                and _name_candidate(words[j + 1])
                and (nxt.lower != "and" or (j + 2 < len(words) and _name_candidate(words[j + 2])))
            ):
                j += 2
            elif nxt.lower in _NAME_HEADS:
                j += 1
                break
            else:
                break
        last = words[j - 1]
        text_span = text[word.start : last.start] + last.base
        article = i > 0 and words[i - 1].lower == "the"
        start = words[i - 1].start if article else word.start
        modifier = (
            not last.possessive
            and j < len(words)
            and text[last.end : words[j].start].strip() in ("", ".")
            and words[j].text[:1].islower()
            and words[j].key not in STOPWORDS | PREPOSITIONS
            and not words[j].key.endswith(("ed", "ing"))  # a verb: "the Yuan dynasty called"
            and not (i > article and words[i - 1 - article].key in _DO_AUX)  # "does Warsaw stand"
        )
        names.append(_Name(text_span, article, start, last.end, last.possessive, modifier))
        i = j
    return names


def _sentence_start(word: _Word, starts: set[int]) -> bool:
    return word.start in starts


def _name_may_start(words: list[_Word], i: int, starts: set[int]) -> bool:
    word = words[i]
    if not _sentence_start(word, starts) and not (i > 0 and words[i - 1].lower == "the"):
        return True
    if word.key in STOPWORDS or word.key in _IMPERATIVES or word.key in WH:
        return False
    if not _sentence_start(word, starts):  # after "the"
        return True
    if any(c.isdigit() for c in word.text) or (word.base.isupper() and len(word.base) > 1):
        return True
    if word.possessive:
        return True
    if i + 1 < len(words) and _name_candidate(words[i + 1]) and not _sentence_start(words[i + 1], starts):
        return True
    sentence = [w for w in words if w.start >= word.start and not _after_break(w, word, starts)]
    return len(sentence) <= 3


def _after_break(w: _Word, first: _Word, starts: set[int]) -> bool:
    return any(first.start < s <= w.start for s in starts)


def _periods(text: str) -> list[re.Match[str]]:
    return [m for m in _PERIOD.finditer(text) if not re.fullmatch(r"(?i)Q[1-4]|H[12]", m.group())]


def _shift(period: str, delta: int) -> str | None:
    match = _YEAR_DIGITS.search(period)
    if match is None:
        return None
    digits = match.group()
    shifted = str(int(digits) + delta).zfill(len(digits))[-len(digits) :]
    return period[: match.start()] + shifted + period[match.end() :]


def _with_period(query: str, new: str) -> str:
    """``query`` about ``new`` instead of its own first period (or with ``new`` added)."""
    found = _periods(query)
    if not found:
        return _append(query, f"in {new}")
    old = found[0]
    replacement = new
    new_year = re.fullmatch(r"(?:1[6-9]|20)\d{2}", new)
    if new_year:  # "FY2021" + "in 2022" -> "FY2022"
        year = re.search(r"(?:1[6-9]|20)\d{2}", old.group())
        if year:
            replacement = old.group()[: year.start()] + new + old.group()[year.end() :]
    return query[: old.start()] + replacement + query[old.end() :]


def _append(query: str, phrase: str) -> str:
    body = query.rstrip().rstrip("?.!").rstrip()
    end = query.rstrip()[len(body) :].strip() or "?"
    return f"{body} {phrase}{end[:1]}"


def _capitalise_first(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True, slots=True)
class Reference:
    kind: Literal["lead", "pronoun", "ellipsis"]
    word: _Word | None
    """The pronoun or demonstrative that refers back (``kind == "pronoun"``)."""
    rest: str
    """The question without its leading connective ("And in 2022?" -> "in 2022?")."""

    @property
    def reason(self) -> str:
        if self.kind == "pronoun" and self.word is not None:
            return f"refers back with {self.word.lower!r}"
        if self.kind == "lead":
            return "starts with a connective that continues the conversation"
        return "too short to stand alone"


def _pronoun(word: _Word, following: _Word | None = None) -> str:
    """The pronoun ``word`` is; "it's" before a noun is read as "its" (a common misspelling)."""
    lower = word.lower.replace("’", "'")
    if lower == "it's":
        return "its" if following is not None and _is_content(following) else "it"
    return lower


def _following(words: list[_Word], i: int) -> _Word | None:
    return words[i + 1] if i + 1 < len(words) else None


_FULL_STOP = re.compile(r"[.?!]")
_CLAUSE_MARK = re.compile(r"[.?!:;,]")


def _antecedent_inside(words: list[_Word], i: int, text: str) -> bool:
    """Whether the word at ``i`` can refer to something earlier in the question itself.

    A personal pronoun ("it", "they", "he", "there") cannot mean a noun of its own clause ("When
    did Khan declare it?"): its antecedent must come before a clause break (a comma, a colon, a
    conjunction, an earlier sentence: "What goal does Islamism have when it comes to..."). A
    possessive or demonstrative may point at its own clause ("Has Microsoft increased its debt?").
    """
    before = words[:i]
    if not before:
        return False
    pronoun = _pronoun(words[i], _following(words, i))
    # "Who moved his court to Krakow?": the person asked about (not "Who was his father?")
    asked_about = before[0].key == "who" and len(before) > 1
    if asked_about and pronoun in _PERSON_PRONOUNS and before[1].key not in AUX | _NEGATED_AUX:
        return True
    names = [n for n in _names(text) if n.end <= words[i].start]
    plain = _unabbreviated(text)

    def compatible_name(n: _Name) -> bool:
        if pronoun in ("they", "them"):
            return n.plural
        if pronoun in _PLURAL_PRONOUNS or pronoun in _PERSON_PRONOUNS:
            return True
        return not n.plural

    content = [w for w in before if _is_content(w) and w.key not in WH]
    if pronoun in _PLURAL_PRONOUNS:
        content = [w for w in content if _plural(w.base)]
    elif pronoun in _PERSON_PRONOUNS:
        content = []
    breaks = [
        w.start
        for b, w in enumerate(before[1:], 1)
        if w.lower in _CLAUSE_BREAKS or _CLAUSE_MARK.search(plain[before[b - 1].end : w.start])
    ]
    if _CLAUSE_MARK.search(plain[before[-1].end : words[i].start]):
        breaks.append(words[i].start)
    candidates = [n.end for n in names if compatible_name(n)] + [w.end for w in content]
    if any(c <= b for c in candidates for b in breaks):
        return True
    if pronoun in _PERSONAL or pronoun == "there":
        return False
    # possessives and demonstratives may also point at their own clause's subject
    stops = [m.end() for m in _FULL_STOP.finditer(plain, 0, words[i].start)]
    clause_start = max(stops, default=0)
    if any(n.start >= clause_start and compatible_name(n) for n in names):
        return True  # "Has Microsoft increased its debt?"
    own = [w for w in before if w.start >= clause_start]
    own_content = [w for w in content if w.start >= clause_start]
    if pronoun in _PLURAL_PRONOUNS:
        return bool(own_content)  # "Who argued that objects retain their velocity?"
    # in a question the words before the verb are the asked-for phrase, not a subject to point
    # at ("What was the key agenda of its 8k filing?"); a statement's subject may be ("The word
    # imperialism has its origins in which language?")
    asking = bool(own) and (own[0].key in WH or own[0].key in AUX or own[0].lower in _NEGATED_AUX)
    return not asking and len(own_content) >= 2


_NEGATED_AUX = _set(
    "isn't aren't wasn't weren't don't doesn't didn't hasn't haven't hadn't can't couldn't won't "
    "wouldn't shouldn't"
)
_DUMMY_IT_NEXT = _set("take takes took true possible likely necessary legal important")


def _refers_back_word(words: list[_Word], i: int) -> bool:
    lower = _pronoun(words[i], _following(words, i))
    prev = words[i - 1].lower.replace("’", "'") if i > 0 else ""
    nxt = words[i + 1].lower if i + 1 < len(words) else ""
    if lower == "it":
        # "how long does it take", "is it true that...", "is it easier to...": "it" points forward
        if nxt in _DUMMY_IT_NEXT:
            return False
        ahead = {w.lower for w in words[i + 1 : i + 6]}
        return not ((prev in _BE or nxt in _BE) and ahead & {"to", "that"})
    if lower in _PERSONAL or lower in _POSSESSIVE:
        return True
    if lower == "there":
        existential = prev in AUX or prev in _NEGATED_AUX or nxt in _BE or nxt in _NEGATED_AUX
        return not (existential or nxt in ("exist", "exists", "existed", "remain", "remains"))
    if lower in ("this", "these", "those"):
        return True
    if lower == "that":
        return i == len(words) - 1 or nxt in _REF_NOUNS or prev in AUX or prev in PREPOSITIONS
    return False


def find_reference(question: str) -> Reference | None:
    text = question.strip()
    if not text:
        return None
    lead = _LEAD.match(text)
    if lead and text[lead.end() :].strip():
        return Reference("lead", None, text[lead.end() :].strip())
    words = _words(text)
    for i, word in enumerate(words):
        if _pronoun(word, _following(words, i)) not in _REFERRING or not _refers_back_word(words, i):
            continue
        if _antecedent_inside(words, i, text):
            continue
        return Reference("pronoun", word, text)
    if _elliptic(words, text):
        return Reference("ellipsis", None, text)
    return None


def _elliptic(words: list[_Word], text: str) -> bool:
    if not words or len(words) > _ELLIPSIS_WORDS:
        return False
    first = words[0].key
    if first in _IMPERATIVES:
        return False
    content = [w for w in words if _is_content(w) and w.key not in WH and w.key not in PREPOSITIONS]
    if not content:
        return True
    # a bare name ("Amcor?", "For Amcor?"): no question word, nothing but the name
    if first in WH or first in AUX:
        return False
    name_words = {w.start for n in _names(text) for w in words if n.start <= w.start < n.end}
    return all(w.start in name_words for w in content)


def refers_back(question: str) -> str | None:
    """Why ``question`` needs the conversation to be understood, or ``None`` when it stands alone."""
    found = find_reference(question)
    return found.reason if found else None


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True, slots=True)
class _Context:
    """What the recent turns offer a follow-up: the latest query and the names, newest first."""

    last: Turn
    names: list[_Name]
    """Names of the latest query first (in their order), then those of older turns."""

    @property
    def last_query(self) -> str:
        return self.last.query

    def pick(self, pronoun: str) -> _Name | None:
        """The name ``pronoun`` most likely means: of matching number, a person for he/she, the
        earlier answer's name when it is short, names standing alone before modifiers."""
        names = [n for n in self.names if not n.modifier] + [n for n in self.names if n.modifier]
        if pronoun in _PERSON_PRONOUNS:
            answer = self.last.answer.strip()
            if answer and len(answer.split()) <= _SHORT_ANSWER_WORDS:
                found = _names(answer)
                if found:
                    return found[0]
            if self.last_query.split()[0].lower() in ("who", "whom", "whose"):
                return None  # "Who wrote Hamlet?" + "When did he die?": the answer is the antecedent
            return next((n for n in names if n.person_like), names[0] if names else None)
        if not names:
            return None
        if pronoun in _PLURAL_PRONOUNS:
            return next((n for n in names if n.plural), names[0])
        return next((n for n in names if not n.plural), names[0])

    def topic(self) -> str | None:
        match = _TOPIC.match(self.last_query)
        if match is None:
            return None
        topic = match.group("topic").strip()
        return topic if topic and len(topic.split()) <= 6 else None


def _context(history: Sequence[Turn]) -> _Context:
    names: list[_Name] = []
    seen: set[str] = set()
    for turn in reversed(history):
        for name in _names(turn.query):
            if name.text.lower() not in seen:
                seen.add(name.text.lower())
                names.append(name)
    return _Context(history[-1], names)


def _concat(question: str, context: _Context, why: str) -> tuple[str, str]:
    """The fallback: the previous query before the follow-up, so retrieval sees both."""
    return f"{context.last_query} {question.strip()}", f"{why}; the previous question is prepended"


def _substitute(text: str, word: _Word, context: _Context) -> tuple[str, str] | None:
    """``text`` with the pronoun ``word`` replaced by what it refers to, and how; ``None`` if unknown."""
    words = _words(text)
    index = next(i for i, w in enumerate(words) if w.start == word.start)
    nxt = _following(words, index)
    lower = _pronoun(word, nxt)
    prev = words[index - 1] if index > 0 else None
    start, end = word.start, word.end
    sentence_start = word.start in _sentence_starts(text)
    replacement: str | None = None
    if lower in _DEMONSTRATIVE:
        if nxt is not None and nxt.key in _TIME_NOUNS:
            found = _periods(context.last_query)
            if not found:
                return None
            replacement = found[0].group()
            end = nxt.end
            if prev is not None and prev.lower not in PREPOSITIONS:  # "what happened that year"
                replacement = f"in {replacement}"
        elif nxt is not None and nxt.key in _REF_NOUNS and nxt.key not in _TIME_NOUNS:
            name = context.pick("they" if _plural(nxt.base) else "it")
            if name is None:
                return None
            replacement = name.as_possessive() if nxt.possessive else name.phrase
            end = nxt.end
        else:
            return None
    else:
        name = context.pick(lower)
        if name is None:
            topic = context.topic()
            if topic is None or lower in _PERSON_PRONOUNS:
                return None
            phrase = topic
            possessive_phrase = f"{topic}'" if topic.endswith("s") else f"{topic}'s"
        else:
            phrase, possessive_phrase = name.phrase, name.as_possessive()
        if lower == "there":
            phrase = phrase if prev is not None and prev.lower in PREPOSITIONS else f"in {phrase}"
            replacement = phrase
        elif lower in ("its", "their", "his") or (
            lower == "her" and nxt is not None and _is_content(nxt) and nxt.lower not in PREPOSITIONS
        ):
            replacement = possessive_phrase
        else:
            replacement = phrase
    if sentence_start:
        replacement = _capitalise_first(replacement)
    rewritten = text[:start] + replacement + text[end:]
    return rewritten, f"{word.text!r} -> {replacement!r}"


def _carry_period(query: str, original: str, context: _Context) -> str:
    """Add the previous period to a quantity question that names none ("What did they spend?")."""
    if _periods(query):
        return query
    if not any(w.key in _QUANTITY_CUES for w in _words(original)):
        return query
    found = _periods(context.last_query)
    return _append(query, f"in {found[0].group()}") if found else query


def _period_only(rest: str) -> str | Literal[False] | None:
    """The period a fragment asks about ("in 2022" -> "2022", "the year before" -> ``None`` meaning
    relative), or ``False`` when the fragment is more than a period."""
    stripped = _RELATIVE_YEAR.sub(" ", rest)
    stripped = _PERIOD.sub(" ", stripped)
    leftover = [w for w in _words(stripped) if w.key not in STOPWORDS and w.key not in PREPOSITIONS]
    if leftover or stripped == rest:
        return False
    found = _periods(rest)
    return found[0].group() if found else None


def _resolve_fragment(rest: str, context: _Context) -> tuple[str, str] | None:
    """A fragment after "and" / "what about", or an elliptic question: a period, a name, or a topic."""
    period = _period_only(rest)
    if period is not False:
        if period is not None:
            return _with_period(context.last_query, period), f"the previous question about {period}"
        relative = _RELATIVE_YEAR.search(rest)
        delta = -1 if relative is not None and relative.group("before") else 1
        found = _periods(context.last_query)
        shifted = _shift(found[0].group(), delta) if found else None
        if not found or shifted is None:
            return None
        query = context.last_query
        query = query[: found[0].start()] + shifted + query[found[0].end() :]
        return query, f"the previous question about {shifted}"
    words = _words(rest)
    names = _names(_capitalise_first(rest))
    first_content = [w for w in words if _is_content(w) and w.key not in PREPOSITIONS]
    named = {w.start for n in names for w in words if n.start <= w.start < n.end}
    if names and first_content and all(w.start in named for w in first_content):
        return _swap(names[0], rest, context)
    return None


def _swap(new: _Name, rest: str, context: _Context) -> tuple[str, str] | None:
    """ "How about Amcor?" after "What was Adobe's revenue in 2021?" -> "What was Amcor's revenue in 2021?"."""
    query = context.last_query
    own = _names(query)
    if not own:
        return None
    old = context.pick("they" if new.plural else "it")
    old = next((n for n in own if old is not None and n.text == old.text), own[0])
    out, cursor = [], 0
    for name in own:
        if name.text != old.text:
            continue
        phrase = new.as_possessive() if name.possessive else new.phrase
        if name.start == 0 or name.start in _sentence_starts(query):
            phrase = _capitalise_first(phrase)
        out.append(query[cursor : name.start] + phrase)
        cursor = name.end
    swapped = "".join(out) + query[cursor:]
    period = _periods(rest)
    if period:
        swapped = _with_period(swapped, period[0].group())
    return swapped, f"the previous question about {new.phrase} instead of {old.phrase}"


def _is_question(text: str) -> bool:
    words = _words(text)
    return bool(words) and (words[0].key in WH or words[0].key in AUX)


def _with_context(rest: str, context: _Context) -> tuple[str, str] | None:
    """A fragment or question with no name of its own ("the operating income?"): the previous
    query's main name and period are added."""
    if _names(rest):
        return None
    name = context.pick("it")
    if name is None:
        return None
    body = rest.strip()
    query = _capitalise_first(body) if _is_question(rest) else f"What about {body}"
    query = _append(query, f"for {name.phrase}")
    found = _periods(context.last_query)
    if found and not _periods(rest):
        query = _append(query, f"in {found[0].group()}")
    return query, f"{name.phrase} carried over from the previous question"


def resolve(question: str, history: Sequence[Turn], reference: Reference) -> tuple[str, str]:
    context = _context(history)
    text = question.strip()
    if reference.kind == "lead":
        rest = reference.rest
        inner = find_reference(rest)
        if inner is not None and inner.kind == "pronoun" and inner.word is not None:
            substituted = _substitute(rest, inner.word, context)
            if substituted is not None:
                query, how = substituted
                if _is_question(rest):  # "And who founded it?"
                    return _capitalise_first(_carry_period(query, rest, context)), how
                # a fragment ("what about its margin?") asks the previous question's period too
                found = _periods(context.last_query)
                query = f"What about {query}"
                if found and not _periods(query):
                    query = _append(query, f"in {found[0].group()}")
                return query, how
        resolved = _resolve_fragment(rest, context) or _with_context(rest, context)
        if resolved is not None:
            return resolved
        return _concat(text, context, "the follow-up could not be resolved")
    if reference.kind == "pronoun" and reference.word is not None:
        substituted = _substitute(text, reference.word, context)
        if substituted is None:
            return _concat(text, context, f"no antecedent for {reference.word.text!r}")
        query, how = substituted
        return _carry_period(query, text, context), how
    resolved = _resolve_fragment(text, context)
    if resolved is not None:
        return resolved
    return _concat(text, context, "a fragment")


__all__ = ["AUX", "STOPWORDS", "WH", "Reference", "Turn", "find_reference", "refers_back", "resolve"]
