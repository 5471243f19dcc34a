"""What a question asks for, and what a sentence says to a yes/no question: the rules `ask` composes answers by.

`shape(question)` sorts a question into one of SHAPES by its opening words, as a reader would:

    yesno       "Does Flask support async views?"          a verdict word, and the sentence that decides it
    howto       "How do I set the secret key?"             the instruction, and the code beside it verbatim
                ("How do bees find flowers?" asks how something works: a `what` question)
    comparison  "What is the difference between X and Y?"  a sentence for each side
    why         "Why does X need Y?"                       the reason, from the passage
    number      "How many …?", "When …?"                   the figure or date, from the passage
    what        everything else (definitions, names)        the phrase, from the passage

`verdict(question, sentence)` reads a yes/no question's answer off the sentence that decides it: "yes" when
the sentence's clause about the question's subject has the question's polarity, "no" when it negates it, "maybe"
when it says the matter is open, and None when the sentence does not address the question closely enough to say.
Plain rules, not a model: the packaged 135M generator cannot tell a negation reliably, and a wrong verdict word is
worse than none.
"""

from __future__ import annotations

import re

from searchlm.text import content_words, word_set

SHAPES = ("yesno", "howto", "comparison", "why", "number", "what")

_YESNO = re.compile(
    r"^(?:is|are|was|were|am|do|does|did|can|could|should|will|would|has|have|had|may|must|shall|might|"
    r"isn't|aren't|wasn't|doesn't|don't|didn't|can't|cannot|couldn't|shouldn't|won't|wouldn't|hasn't|haven't)\b",
    re.IGNORECASE,
)
_HOWTO = re.compile(
    r"(?:^|[.,;:!?]\s+|\b(?:so|and|but)\s+)(?:how\s+(?:do|can|could|should|would|might|may)\s+(?:i|you|we|one|users?|"
    r"people)\b|how\s+to\b|(?:what|which)(?:'s|\s+is)?\s+the\s+(?:best\s+|right\s+|recommended\s+|correct\s+|"
    r"proper\s+)?(?:way|command|syntax|setting|option|function|method|decorator)\s+(?:to|for|that|which)\b|"
    r"(?:what|which)\s+(?:command|setting|option|function|method|decorator)s?\s+(?:do|does|should|can|will|runs?|"
    r"lets?|makes?|sets?)\b|(?:show\s+me\s+)?how\s+to\b|steps\s+to\b)",
    re.IGNORECASE,
)
_COMPARISON = re.compile(
    r"\b(?:differences?\s+between|differ(?:s|ent)?\s+from|how\s+(?:does|do|is|are)\s+.+\s+(?:differ|compare)|"
    r"compared?\s+(?:to|with)|versus|vs\.?)\b|^(?:which|what)\s+(?:is|are)\s+(?:better|faster|preferred)\b",
    re.IGNORECASE,
)
_WHY = re.compile(r"^(?:why|what\s+is\s+the\s+(?:reason|purpose|point)|for\s+what\s+reason)\b", re.IGNORECASE)
_NUMBER = re.compile(
    r"^(?:how\s+(?:many|much|long|old|often|far|big|large|fast)|when)\b|"
    r"^(?:(?:at|in|on|from|by|since|until)\s+)?(?:what|which)\s+(?:[\w-]+\s+)?(?:years?|dates?|times?|versions?|"
    r"percentages?|numbers?|sizes?|ports?|ages?|limits?|(?:status\s+)?codes?|releases?)\b",
    re.IGNORECASE,
)


def shape(question: str) -> str:
    """One of SHAPES for `question` (see the module docstring)."""
    q = " ".join(question.strip().split())
    if _COMPARISON.search(q):
        return "comparison"
    if _HOWTO.search(q):
        return "howto"
    if _WHY.match(q):
        return "why"
    if _NUMBER.match(q):
        return "number"
    if _YESNO.match(q) or _yesno_after_clause(q):
        return "comparison" if re.search(r"\s+or\s+", q) and sides(q) else "yesno"
    return "what"


def _yesno_after_clause(q: str) -> bool:
    """"If I store something on g, will it still be there?": a yes/no question behind an opening clause."""
    if not q.rstrip().endswith("?") or re.match(r"^(?:what|which|who|whom|whose|where|when|why|how)\b", q, re.I):
        return False
    return any(_YESNO.match(part) for part in re.split(r"[,;:]\s+", q)[1:])


# -- comparison ---------------------------------------------------------------------------------------------
_SIDES = (
    re.compile(r"differences?\s+between\s+(.+?)\s+and\s+(.+?)[?.!]*$", re.IGNORECASE),
    re.compile(r"^(?:how\s+(?:does|do|is|are)\s+)?(.+?)\s+(?:differ\s+from|compared?\s+(?:to|with)|versus|vs\.?)\s+"
               r"(.+?)(?:\s+differ)?[?.!]*$", re.IGNORECASE),
    re.compile(r"\b(?:use|choose|pick|prefer)\s+(.+?)\s+or\s+(.+?)[?.!]*$", re.IGNORECASE),
    re.compile(r"^(?:which|what)\s+(?:is|are)\s+(?:better|faster|preferred)[,:]?\s+(.+?)\s+or\s+(.+?)[?.!]*$",
               re.IGNORECASE),
)


def sides(question: str) -> tuple[str, str] | None:
    """The two things a comparison question weighs, or None when it names them in no form these rules know."""
    q = " ".join(question.strip().split())
    for pattern in _SIDES:
        m = pattern.search(q)
        if m:
            a, b = (re.sub(r"^(?:the|a|an|using)\s+", "", s.strip(" ,"), flags=re.IGNORECASE) for s in m.groups())
            if content_words(a) and content_words(b):
                return a, b
    return None


# -- yes/no -------------------------------------------------------------------------------------------------
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|neither|nor|cannot|can't|won't|isn't|aren't|wasn't|weren't|doesn't|don't|didn't|"
    r"hasn't|haven't|shouldn't|mustn't|couldn't|wouldn't|unable|impossible|unsupported|nothing|nobody|without|"
    r"fails?\s+to|lacks?)\b|n't\b",
    re.IGNORECASE,
)
# What says the matter is open. Permission ("you may use") is not doubt, so plain "may" is not here.
_OPEN = re.compile(
    r"\b(?:unclear|not\s+clear|inconclusive|uncertain|remains?\s+(?:to\s+be|unknown|controversial)|"
    r"may\s+or\s+may\s+not|not\s+(?:always|necessarily)|in\s+some\s+cases|it\s+depends|depends\s+on|"
    r"conflicting|mixed\s+results|further\s+(?:studies|research)\s+(?:is|are)\s+needed)\b",
    re.IGNORECASE,
)
# A question that asks for advice or a need ("Should I …?", "Do I have to …?") is answered "no" by a sentence that
# advises against it, whatever it names: "It is not recommended since …", "this is strongly discouraged".
_ADVICE = re.compile(r"^(?:should|must|do\s+(?:i|you|we)\s+(?:have|need)\s+to|is\s+it\s+(?:necessary|required|"
                     r"recommended|a\s+good\s+idea))\b", re.IGNORECASE)
_ADVISED_AGAINST = re.compile(
    r"\b(?:not\s+(?:recommended|advised|advisable|necessary|needed|required)|discouraged|(?:should|must)\s*n[o']t|"
    r"no\s+need|avoid)\b",
    re.IGNORECASE,
)
_CLAUSE = re.compile(r"[,;:()]|\s(?:but|yet|although|though|whereas|while|so)\s", re.IGNORECASE)
NEGATION_SCOPE = 4  # words after a negation, within its clause, that it covers: "will not slip or tighten under
# load" negates slipping, not the load (counting content words instead reached "load" and lost two dev verdicts)
MIN_OVERLAP = 0.4  # share of the question's content words the deciding sentence must hold
MAIN_CLAUSE_WORDS = 4  # a negation among a question's first words ("Doesn't …", "Is it not …") only frames it


def verdict(question: str, sentence: str, about: str = "") -> str | None:
    """"yes", "no" or "maybe" for a yes/no question, read off the sentence that decides it, or None when the
    sentence holds under MIN_OVERLAP of the question's content words (it does not address the question).

    The sentence says "no" when it negates something the question asks about: a negation ("not", "never",
    "cannot", "without", …) with one of the question's content words among the NEGATION_SCOPE words after it in
    its clause ("are not tea", "did not count as a record"). A negation of something else ("will not slip …,
    yet can be untied easily", asked whether it can be untied) leaves it a "yes", and so does a negation of what
    the question itself negates ("Can a clove hitch shake loose when it is not under load?" answered by "… when
    not under load"). A question asked in the negative is answered as English answers it: "Doesn't the cluster
    need heat?" gets "no" from "The cluster does not need heat", like "Does the cluster need heat?". A question
    asking for advice ("Should I …?") is answered "no" by advice against. `about` names what the sentence speaks
    of when it does not say it ("It supports Windows directly." under the heading "Waitress"): its words count
    toward the overlap."""
    wanted = content_words(_YESNO.sub("", question, count=1))
    if not wanted:
        return None
    have = word_set(f"{sentence} {about}")
    if sum(w in have for w in wanted) < MIN_OVERLAP * len(wanted):
        return None
    if _OPEN.search(sentence):
        return "maybe"
    # The question after its first words, punctuation kept for the clauses: "Doesn't it need heat?" is answered
    # as "Does it need heat?".
    words = list(re.finditer(r"[\w']+", question))
    deeper = question[words[MAIN_CLAUSE_WORDS].start():] if len(words) > MAIN_CLAUSE_WORDS else ""
    mirrored = set().union(*_covered(deeper, set(wanted)))  # what the question negates itself
    said_negative = len(_covered(sentence, set(wanted) - mirrored)) % 2 == 1
    return "no" if said_negative or advised_against(question, sentence) else "yes"


def advised_against(question: str, text: str) -> bool:
    """Whether `text` advises against what a question asking for advice ("Should I …?", "Do I have to …?") asks."""
    return bool(_ADVICE.match(question.strip()) and _ADVISED_AGAINST.search(text))


def _covered(text: str, wanted: set[str]) -> list[set[str]]:
    """For each negation in `text` that covers one of `wanted` (stemmed content words), the words it covers: those
    among the NEGATION_SCOPE words after it, within its clause."""
    text = re.sub(r"\bnot\s+only\b", " ", text, flags=re.IGNORECASE)
    found: list[set[str]] = []
    for clause in _CLAUSE.split(text):
        tokens = re.findall(r"[\w']+", clause)
        for i, token in enumerate(tokens):
            if _NEGATION.fullmatch(token) or token.lower().endswith("n't"):
                hit = word_set(" ".join(tokens[i + 1:i + 1 + NEGATION_SCOPE])) & wanted
                if hit:
                    found.append(hit)
    return found


def negation(word: str) -> bool:
    """Whether one word negates ("not", "never", "can't", "without")."""
    return bool(_NEGATION.fullmatch(word.strip()))


CONCLUSION = re.compile(
    r"^(?:in\s+conclusion|conclusions?:?|to\s+conclude|in\s+summary|overall|taken\s+together|"
    r"(?:these|our|the)\s+(?:results|findings|data)\s+(?:suggest|show|indicate|demonstrate)|we\s+conclude)\b",
    re.IGNORECASE,
)
