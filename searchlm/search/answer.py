"""`ask`: answer a question from an index, citing the passages the answer came from, or refuse.

1. Retrieve with the index's own search (hybrid by default); the hits are the numbered passages [1]..[k].
2. Weigh the evidence: how close the best *sentence* of the top passages comes to the question (cosine, with the
   index's own query encoder) and how many of the question's content words those passages hold. Below a
   calibrated threshold the answer is a refusal that shows the nearest passages; no model is loaded or run.
3. Read the question's shape (`questions.shape`). A yes/no, how-to or comparison question is answered from the
   passages' own sentences with no model (`compose`): the verdict word read off the deciding sentence and that
   sentence quoted; the instruction quoted with the passage's code block beside it; a quoted sentence for each
   side. It streams as soon as it is decided. Other questions go to the model:
4. Prompt the generator with the best-ranked sentences, each under its passage number, within the model's
   window (prompt and answer together); its chat template when it has one, else a completion prompt with one
   worked example (base models: GPT-2, Gemma 3 270M). `build_prompt` without `focus` packs whole passages instead.
5. Check the answer as it is generated (`CheckedStream`): markers that name no passage are dropped, a wrong
   one is re-pointed to the passage that holds the sentence, a marker is traced for a sentence without one.
   Each sentence, once complete and checked, is shown at once if it passes (`_Shown`): it cites a passage, does
   not decline, and all that it adds to the question is in one passage (a made-up number or name is the small
   model's commonest error, and exactly the word that is not there). A sentence that fails is left out before
   anyone sees it and ends the generation (a small model that made something up rarely gets back on track); if
   none passes, the answer is a quote of the best-matching sentence (or two, `quote`) with its citation
   (`Answer.extractive`). When the model's sentence passes, the passage sentence it stands on follows it, quoted.
   So what streams adds up to the final answer: nothing shown is ever taken back. `Answer.parts` says of each
   piece whether it was generated, quoted, code or a verdict, and which citation supports it.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from searchlm.errors import InputError
from searchlm.generate.registry import DEFAULT_GENERATOR, get_generator, is_loaded
from searchlm.generate.citations import CheckedStream, cited_numbers
from searchlm.search import questions
from searchlm.text import CITATION, LIST_MARK, content_words, is_code, paragraphs, sentences, stem, word_set
from searchlm.records import Citation, Hit, cited_json

if TYPE_CHECKING:
    from searchlm.generate.base import Generator
    from searchlm.search.searcher import Searcher

log = logging.getLogger(__name__)

REFUSAL = "The indexed documents do not cover this question."
MAX_K = 20

# Evidence = SENTENCE_WEIGHT x (best question-sentence cosine among the top EVIDENCE_HITS passages)
#          + (1 - SENTENCE_WEIGHT) x (share of the question's content words found in one of those passages).
# How it was chosen: on the default MiniLM index of xquad_en, 150 xquad questions (seeded sample) against the 50
# questions of benchmarks/out_of_corpus_calibration.jsonl (not the 50 the benchmark reports), a grid over the
# weight and the threshold. Passage-level cosine alone could not do better than ~80 % correct refusals at ~10 %
# false ones; the sentence-level mix above separates far better. At 0.51 the calibration set has 4.7 % false
# and 86 % correct refusals (0.53: 6 % and 90 %); 0.51 keeps a margin on both targets (<= 10 %, >= 80 %) and
# still answers paraphrased questions such as sample_corpus/QUERIES.md's, whose evidence is 0.52-0.60.
SENTENCE_WEIGHT = 0.7
EVIDENCE_THRESHOLD = 0.51
EVIDENCE_HITS = 3
MAX_EVIDENCE_SENTENCES = 48
# A quote is a window: the sentence and the one after it in its passage, ranked as one text (embedded whole, with
# the share of the question's words it holds). Documentation states a problem, then its answer ("If another
# program is already using port 5000, you'll see an OSError … Either identify and stop the other program, or use
# flask run --port 5001"), so the best-matching sentence alone often stops short of it. On the Flask and Click QA
# sets (benchmarks/manual_qa_bench.py) the gold fact was in the best sentence for 20/61 and 31/89 questions, in
# the best two-sentence window for 28/61 and 51/89 (32 words against 17); three-sentence windows added little more
# (33/61, 56/89) for 47 words. Before windows, a neighbour joined the best sentence when it ranked within 0.1.

# The context is the best-ranked sentences up to FOCUS_TOKENS (0: whole passages, up to PASSAGE_TOKENS_CAP).
# xquad, 150 questions: 48 tokens gave the same contains-gold as 96 (63 %) with higher token F1 (0.16 vs 0.13).
# Against whole passages (60 questions): 60 % vs 65 % contains-gold, within noise, but with whole passages 91 %
# of the answers were the quote fallback (the model's own answer was not in the passages; 54 % with sentences)
# and the first token came after 1.36 s instead of 0.24 s (load 5 on two cores).
FOCUS_TOKENS = 48
PASSAGE_TOKENS_CAP = 640  # whole-passage prompts (build_prompt without focus), e.g. for bigger models
MIN_PASSAGE_TOKENS = 32  # a passage cut shorter than this is left out instead

INSTRUCTION = "Answer the question with a short phrase copied from the text."
STOP = ("\n",)  # one line: the small model's second line is a new, invented question more often than not
_PREAMBLE = re.compile(r"^(the )?answer( to (the|this|your) question)? is\s*:?\s*", re.IGNORECASE)
# What _PREAMBLE matches, spelled out, to tell while an answer streams whether it may still open with one.
_PREAMBLES = tuple(
    f"{the}answer{to} is" for the in ("the ", "") for to in ("", " to the question", " to this question",
                                                           " to your question")
)
_DECLINED = re.compile(
    r"^\W*(not in the (text|passages)|(the )?(text|passages?) (do|does) not|i (do not|don't|cannot|can't) "
    r"(know|answer|find)|(there is )?no (information|answer))",
    re.IGNORECASE,
)


@dataclass
class Answer:
    question: str
    answer: str
    citations: list[Citation]
    passages: list[Hit]
    refused: bool
    model: str
    seconds: float
    evidence: float | None = None  # the retrieval-evidence score the refusal decision used
    timings: dict[str, float] = field(default_factory=dict)  # retrieve, first_token, generate (seconds)
    extractive: bool = False  # nothing generated was kept: the answer is quoted from the passages
    shape: str = "what"  # what the question asks for (questions.SHAPES)
    verdict: str | None = None  # a yes/no question's answer, "yes", "no" or "maybe", when a passage decides it
    parts: list["AnswerPart"] = field(default_factory=list)  # the answer, piece by piece, each with its source

    @property
    def confidence(self) -> float:
        """The retrieval evidence the answer stands on (see EVIDENCE_THRESHOLD): below 0.51 it is a refusal,
        0.51-0.6 is thin, 0.6-0.7 fair, above 0.7 strong."""
        return round(self.evidence or 0.0, 3)

    def to_json(self) -> dict:
        return {
            "question": self.question, "answer": self.answer, "refused": self.refused, "shape": self.shape,
            "verdict": self.verdict, "confidence": self.confidence, "extractive": self.extractive,
            "sentences": [p.to_json() for p in self.parts], **cited_json(self),
        }


@dataclass
class AnswerPart:
    """One piece of an answer: a sentence the model wrote and the check traced (`generated`), a sentence or code
    block copied from a passage (`quoted`, `code`), or a yes/no verdict read off the quoted sentence after it
    (`verdict`). `passage` is its citation number in the answer ([n]), None for a verdict."""

    text: str
    kind: str
    passage: int | None

    def to_json(self) -> dict:
        return {"text": self.text, "kind": self.kind, "passage": self.passage}


@dataclass
class AskOptions:
    k: int = 5
    generator: str | None = None  # None: the default (settings.generator, else smollm2)
    max_tokens: int = 256
    temperature: float = 0.0  # 0 is greedy
    mode: str = "hybrid"

    def validate(self) -> None:
        if not 1 <= self.k <= MAX_K:
            raise InputError(f"k {self.k} is out of range for answers (use a value from 1 to {MAX_K})")
        if self.max_tokens < 1:
            raise InputError(f"max tokens {self.max_tokens} is too small", "use max_tokens=64 or more", "use --max-tokens 64 or more")
        if not 0.0 <= self.temperature <= 2.0:
            raise InputError(f"temperature {self.temperature} is out of range (use 0 for greedy, up to 2)")


class _Preload:
    """`get_generator` in a daemon thread (a refusal never waits for it); `result()` joins it."""

    def __init__(self, name: str | None, device: str):
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(name, device), name="searchlm-load", daemon=True)
        self._thread.start()

    def _run(self, name, device) -> None:
        try:
            self._value = get_generator(name, device)
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def result(self) -> "Generator":
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


# -- ask --------------------------------------------------------------------------------------------------
def ask(
    searcher: "Searcher",
    question: str,
    options: AskOptions | None = None,
    on_token: Callable[[str], None] | None = None,
    generator: "Generator | None" = None,
    on_load: Callable[[str], None] | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> Answer:
    """Answer `question` from `searcher`'s index with numbered citations, or refuse when the index does not
    cover it. `on_token` receives the answer a checked sentence at a time, as soon as each passes (never
    called for a refusal): the pieces add up to `Answer.answer`, the quote included when nothing the model
    wrote could be traced (`Answer.extractive`). Citations are numbered in the order the answer cites them.

    `on_load` is called with the generator's name when its model must be loaded; the load then starts at once
    in a background thread, beside retrieval, instead of after it. `heartbeat` is called for every piece the
    model writes, shown or not: an exception it raises stops the generation (a server whose client has gone)."""
    from searchlm.search.searcher import SearchOptions

    options = options or AskOptions()
    options.validate()
    question = " ".join(question.split())
    if not question:
        raise InputError("the question is empty (type a question to ask)")
    started = time.perf_counter()
    kind = questions.shape(question)
    name = options.generator or getattr(searcher.settings, "generator", None)
    device = getattr(searcher.settings, "device", "auto")
    preload = None
    composed_shape = kind in COMPOSED
    if generator is None and on_load is not None and not composed_shape and not is_loaded(name, device):
        on_load(name or DEFAULT_GENERATOR)
        preload = _Preload(name, device)
    hits = searcher.search(question, SearchOptions(k=options.k, mode=options.mode)).hits
    evidence, ranked = weigh_evidence(searcher, question, hits)
    if kind == "number":  # the sentence that holds a figure first, among those that match about as well
        ranked.sort(key=lambda s: -(s.score + NUMBER_BONUS * bool(re.search(r"\d", s.text))))
    timings = {"retrieve": time.perf_counter() - started}
    model = generator.name if generator is not None else (name or DEFAULT_GENERATOR)
    if not hits or evidence < EVIDENCE_THRESHOLD:
        return Answer(question, REFUSAL, [], hits, True, model, time.perf_counter() - started, evidence, timings,
                      shape=kind)

    if composed_shape:
        emit, first = _first_timed(on_token, started)
        shown = _Shown(question, [h.text for h in hits], emit, kind)
        decided = compose(kind, question, hits, ranked, shown, following=_next_chunk(searcher))
        if decided is not None:
            timings["first_token"] = timings["generate"] = first[0] - timings["retrieve"] if first else 0.0
            citations = [Citation.of(new, hits[old - 1]) for new, old in enumerate(shown.order, start=1)]
            return Answer(question, shown.text, citations, hits, False, "extractive", time.perf_counter() - started,
                          evidence, timings, True, kind, decided or None, shown.parts)
        # Nothing these rules could compose (a comparison whose sides no passage names): the model answers.

    if generator is None:
        generator = preload.result() if preload is not None else get_generator(name, device)
    model = generator.name
    prompt, _ = build_prompt(generator, question, hits, options.max_tokens, focus=ranked if FOCUS_TOKENS else None)

    generated = time.perf_counter()
    emit, first = _first_timed(on_token, generated)

    passages = [h.text for h in hits]
    shown = _Shown(question, passages, emit, kind)
    checked = CheckedStream(passages, prepare=_tidy, on_sentence=shown.offer)

    def feed(piece: str) -> None:
        checked.feed(piece)
        if heartbeat is not None:
            heartbeat()

    try:
        generator.generate(prompt, options.max_tokens, options.temperature, on_token=feed, stop=STOP)
        checked.finish()
    except _Untraced:
        pass  # the model made something up: what it would write after that is not shown, so it stops here
    extractive = not shown.kept
    if extractive:
        if ranked:
            # Nothing the model wrote could be traced (what it added to the question is not in the passages, or
            # it added nothing): quote the sentence that best matches the question instead, with its source.
            text, n = quote(ranked, hits, kind)
            shown.add(quoted(text, n), [n], "quoted")
        else:
            text = checked.text
            shown.add(text, cited_numbers(text))
    elif shown.parts[0].kind == "generated":
        # The model's short answer in its own words, then the passage's sentence it stands on, quoted: the reader
        # sees the answer and, beside it, the words of the source that support it (not when the model copied them).
        support = supporting(shown.kept_raw[0], question, ranked)
        if support is not None:
            shown.add(quoted(support.text, support.n), [support.n], "quoted")
    if ranked:
        also = runner_up(ranked, shown.text)
        if also is not None:
            shown.add(quoted(also.text, also.n), [also.n], "quoted")
    timings["first_token"] = first[0] if first else time.perf_counter() - generated
    timings["generate"] = time.perf_counter() - generated
    citations = [Citation.of(new, hits[old - 1]) for new, old in enumerate(shown.order, start=1)]
    seconds = time.perf_counter() - started
    extractive = extractive and bool(ranked)
    return Answer(question, shown.text, citations, hits, False, model, seconds, evidence, timings, extractive, kind,
                  None, shown.parts)


def _first_timed(on_token: Callable[[str], None] | None, since: float) -> tuple[Callable[[str], None], list[float]]:
    """An emit that passes text on to `on_token` and notes, in the list it returns, the seconds from `since` to
    the first piece."""
    first: list[float] = []

    def emit(text: str) -> None:
        if not first:
            first.append(time.perf_counter() - since)
        if on_token is not None:
            on_token(text)

    return emit, first


class _Untraced(Exception):
    """Raised from inside the generation when a sentence fails the check: it stops the model."""


class _Shown:
    """The answer as it is shown: the model's checked sentences that pass, each passed on whole as soon as it
    passes, with its markers renumbered in citing order. A sentence passes when it cites a passage, does not
    decline to answer, and is `grounded`; the others are left out before anyone sees them, so what `emit`
    receives adds up to the final answer and nothing shown is ever taken back."""

    def __init__(self, question: str, passages: list[str], emit: Callable[[str], None], shape: str = "what"):
        self.question = question
        self.shape = shape
        self.passages = passages
        self.emit = emit
        self.kept: list[str] = []  # shown sentences, renumbered
        self.kept_raw: list[str] = []  # the same, as the model numbered them (passage n is hits[n - 1])
        self.parts: list[AnswerPart] = []
        self.order: list[int] = []  # passage numbers, in citing order: new number n stands for order[n - 1]
        self._text = ""

    @property
    def text(self) -> str:
        return self._text

    def offer(self, sentence: str) -> None:
        """Show `sentence` if it passes; if not, raise _Untraced, which ends the generation: the answer so far
        (or the quote) is final. On 40 xquad questions no answer had a sentence that passed after one that failed
        (37 of 38 answers were one sentence), while on the sample corpus a failed first sentence was followed by
        up to 200 more tokens of the same, that would only have delayed the quote."""
        numbers = cited_numbers(sentence)
        if not numbers or _DECLINED.match(sentence) or not grounded(sentence, self.question, self.passages) \
                or _bare_number(sentence, self.shape):
            log.debug("answer sentence left out (untraced or declining): %r", sentence)
            raise _Untraced(sentence)
        self.add(sentence, numbers)

    def add(self, sentence: str, numbers: list[int], kind: str = "generated") -> None:
        """Show `sentence` (its markers as the passages are numbered), a `kind` part of the answer citing the first
        of `numbers`; a code block goes on lines of its own."""
        self.order.extend(n for n in numbers if n not in self.order)
        text, _ = renumber(sentence, self.order)
        if kind == "generated" and _verbatim(CITATION.sub("", sentence), self.passages):
            kind = "quoted"  # the model copied the passage word for word
        piece = (("\n\n" if kind == "code" or self.parts and self.parts[-1].kind == "code" else " ")
                 if self._text else "") + text
        self.emit(piece)
        self._text += piece
        if kind != "code":
            self.kept.append(text)
            self.kept_raw.append(sentence)
        passage = self.order.index(numbers[0]) + 1 if numbers else None
        self.parts.append(AnswerPart(CITATION.sub("", text).strip() if kind == "code" else text, kind, passage))

    def verdict(self, word: str) -> None:
        text = f"{word.capitalize()}."
        self.emit(text)
        self._text += text
        self.parts.append(AnswerPart(text, "verdict", None))


def _bare_number(sentence: str, shape: str) -> bool:
    """An answer that is a bare number ("1 [1].") to a question that asks for no number: the small model's filler."""
    return shape != "number" and not re.search(r"[^\W\d_]", CITATION.sub(" ", sentence))


def renumber(text: str, numbers: list[int]) -> tuple[str, list[int]]:
    """(text with its markers renumbered in citing order, the passage number each new number stands for):
    an answer citing only passage 2 cites it as [1]."""
    new = {old: n for n, old in enumerate(numbers, start=1)}
    return re.sub(r"\[\d+\]", lambda m: f"[{new.get(int(m.group(0)[1:-1]), m.group(0)[1:-1])}]", text), list(numbers)


def _tidy(sentence: str, first: bool, complete: bool = True) -> str | None:
    """The answer's first sentence without a "The answer is:" preamble, and with a leading marker (the model
    copying a label) moved to its end; None while an incomplete one may still open with a preamble."""
    if not first:
        return sentence
    if not complete and _may_be_preamble(sentence):
        return None
    sentence = _PREAMBLE.sub("", sentence)
    lead = re.match(r"^\[(\d+)\]\s*(\S.*)$", sentence, re.DOTALL)
    if lead is None:
        return sentence
    body = lead.group(2).rstrip()
    if not complete:
        return body  # its marker goes at its end, which is shown only once the sentence is complete
    end = len(body.rstrip(".!?"))
    return f"{body[:end]} [{lead.group(1)}]{body[end:]}"


def _may_be_preamble(text: str) -> bool:
    """Whether more text could still make `text` a preamble, or lengthen the one it is."""
    if any(p.startswith(text.lower()) for p in _PREAMBLES):
        return True
    match = _PREAMBLE.match(text)
    return match is not None and match.end() == len(text)


def grounded(text: str, question: str, passages: list[str]) -> bool:
    """Whether every content word the answer adds to the question occurs in one passage. An answer that adds
    nothing (the question said back) is not grounded either. On xquad this strict test, with the quote
    fallback, lifted contains-gold from 57 % (80 % of all words traced) to 66 %: a number or name the small model
    makes up is the commonest error, and it is exactly the word that is not in the passage."""
    bare = CITATION.sub(" ", text)
    added = _added_words(bare, question)
    if not added:
        return False
    for have in (word_set(p) for p in passages):
        missing = [w for w in added if w not in have]
        if not missing or (len(missing) == 1 and len(added) >= MIN_ADDED_FOR_SLACK and _filler(missing[0], bare)):
            return True
    return False


def _added_words(text: str, question: str) -> list[str]:
    """The content words `text` (its markers removed) adds to the question: what an answer claims."""
    asked = set(content_words(question))
    return [w for w in content_words(text) if w not in asked]


# One word of an answer may be missing from its passage when the answer adds at least this many: a filler such as
# "around" or "mostly" in "The core is kept at around 20 to 35 °C". Never a number, a name or a negation (see _filler).
MIN_ADDED_FOR_SLACK = 4


def _filler(stemmed: str, text: str) -> bool:
    """Whether a word of `text` (given stemmed) may be left untraced: lower-case letters, not a negation."""
    if not stemmed.isalpha():
        return False
    written = [w for w in re.findall(r"[^\W\d_]+", text) if stem(w.lower()) == stemmed]
    return bool(written) and all(w.islower() for w in written) and not any(questions.negation(w) for w in written)


@dataclass
class Sentence:
    """A sentence of passage `n` (1-based, retrieval order), scored against the question."""

    n: int
    position: int
    text: str
    score: float
    about: str = ""  # what an "It …" sentence is about: its section's heading (and the page title)
    window: str = ""  # the sentence and the one after it in its passage ("" when prose does not go on)
    window_score: float = 0.0  # the window's rank, scored as one text (the sentence's own score without one)


def quote(ranked: list[Sentence], hits: list[Hit] | None = None, kind: str = "what") -> tuple[str, int]:
    """(the span to quote, its passage number): the best-ranked window (a sentence and the next, see Sentence.window;
    a sentence that prose does not follow stands alone), and what `continuation` finds after it in `hits`' passage."""
    best = max(ranked, key=lambda s: s.window_score)
    text, last = (best.window, best.position + 1) if best.window else (best.text, best.position)
    if hits is not None:
        more = continuation(hits[best.n - 1].text, last, kind, text)
        if more:
            text = f"{text} {more}"
    return text, best.n


ANAPHOR = re.compile(r"^(?:it|its|this|that|these|those|they|their|there|otherwise|that way|so)\b", re.IGNORECASE)
LEAD_IN_PENALTY = 0.1  # a sentence that ends in ":" (it introduces a list) or "?" (the page asks the question) answers nothing itself


def continuation(text: str, position: int, kind: str, said: str = "") -> str:
    """What to quote after the passage's sentence at `position`: the next sentence when it goes on from it (it
    opens with "It", "This", "That way": "…is strongly discouraged. It can't be read early by the flask run
    command…"), and for a `number` question whose sentence holds no figure, the first of the next two that
    does ("…how many fields can be parsed. It is set to 1000 by default.", "Default: 4093")."""
    units = passage_units(text)
    after = [s for kind_, s in units[position + 1:position + 3] if kind_ == "sentence"]
    if not after:
        return ""
    taken: list[str] = []
    if not LIST_MARK.match(after[0]) and ANAPHOR.match(after[0]):
        taken.append(after[0])
    if kind == "number" and not re.search(r"\d", said + " ".join(taken)):
        found = next((s for s in after if re.search(r"\d", s)), None)
        if found is not None and found not in taken:
            upto = after[:after.index(found) + 1]
            taken = upto if len(" ".join(upto)) < 300 else [found]
    return " ".join(taken)


def passage_units(text: str) -> list[tuple[str, str]]:
    """A passage as ("sentence", text) and ("code", block) units in reading order; a unit's index is its
    position. A passage with no prose at all (a code file's chunk) is its sentences, so it can still be quoted."""
    units: list[tuple[str, str]] = []
    for paragraph in paragraphs(text):
        if is_code(paragraph):
            units.append(("code", paragraph))
        else:
            units.extend(("sentence", s) for s in sentences(paragraph))
    if not any(kind == "sentence" for kind, _ in units):
        return [("sentence", s) for s in sentences(text)]
    return units


def _share(wanted: list[str], have: set[str]) -> float:
    """The share of the question's content words `wanted` that a text's words `have` hold (0 for no words)."""
    return sum(w in have for w in wanted) / len(wanted) if wanted else 0.0


def weigh_evidence(searcher: "Searcher", question: str, hits: list[Hit]) -> tuple[float, list[Sentence]]:
    """(evidence score, the sentences of the top passages, best first); see EVIDENCE_THRESHOLD.

    A sentence's rank mixes its cosine to the question with the share of the question's content words it holds
    (on xquad the best sentence so ranked holds the answer 77 % of the time, 71 % by cosine alone)."""
    top = hits[:EVIDENCE_HITS]
    if not top:
        return 0.0, []
    wanted = content_words(question)
    units: list[tuple[int, int, str, str]] = []  # (passage number, position, sentence, it and the next sentence)
    coverage = 0.0
    for n, hit in enumerate(top, start=1):
        if wanted:
            have = word_set(f"{hit.title} {hit.heading} {hit.text}")
            coverage = max(coverage, _share(wanted, have))
        parts = passage_units(hit.text)
        for i, (kind, s) in enumerate(parts):
            if kind == "sentence" and len(s.split()) >= 3:
                after = parts[i + 1] if i + 1 < len(parts) else None
                units.append((n, i, s, f"{s} {after[1]}" if after is not None and after[0] == "sentence" else ""))
    units = units[:MAX_EVIDENCE_SENTENCES] or [(n, 0, h.text, "") for n, h in enumerate(top, start=1)]
    encoder = searcher.encoder
    q = encoder.embed_query(question)
    windows = [w for *_, w in units if w]
    vectors = encoder.embed([text for _, _, text, _ in units] + windows) @ q
    sims = [float(x) for x in vectors[:len(units)]]
    window_sims = iter(float(x) for x in vectors[len(units):])
    evidence = SENTENCE_WEIGHT * max(sims) + (1 - SENTENCE_WEIGHT) * coverage
    ranked = []
    for (n, i, text, window), sim in zip(units, sims):
        about = ""
        if ANAPHOR.match(LIST_MARK.sub("", text)):  # "It supports Windows directly." under the heading "Waitress"
            about = f"{top[n - 1].title or ''} {(top[n - 1].heading or '').rsplit('>', 1)[-1]}".strip()
        score = _sentence_score(sim, text, wanted, about)
        window_score = _sentence_score(next(window_sims), window, wanted, about) if window else score
        ranked.append(Sentence(n, i, text, score, about, window, window_score))
    ranked.sort(key=lambda s: -s.score)
    return evidence, ranked


def _sentence_score(sim: float, text: str, wanted: list[str], about: str = "") -> float:
    """A sentence's (or window's) rank: its cosine to the question mixed with the share of the question's content
    words it holds (with `about`, what an "It …" sentence speaks of), less LEAD_IN_PENALTY for a lead-in."""
    score = SENTENCE_WEIGHT * sim + (1 - SENTENCE_WEIGHT) * _share(wanted, word_set(f"{text} {about}"))
    return score - LEAD_IN_PENALTY if text.rstrip().endswith((":", "?")) else score


# -- composed answers -------------------------------------------------------------------------------------
COMPOSED = ("yesno", "howto", "comparison", "number")  # shapes answered from the passages' own sentences, with no model


def needs_model(question: str) -> bool:
    """Whether `ask` runs the generator for this question (see COMPOSED)."""
    return questions.shape(question) not in COMPOSED
DECIDING_MARGIN = 0.15  # a sentence this close to the best may decide a yes/no question instead of it
OVERLAP_WEIGHT = 0.25  # how much naming the question's words counts, against the rank, in picking that sentence
MAX_CODE_LINES = 24  # a longer code block is cut at this many lines, marked as cut
NUMBER_BONUS = 0.05  # "How many …?", "Which port …?": a sentence with a digit ranks this much higher


def compose(kind: str, question: str, hits: list[Hit], ranked: list[Sentence], shown: "_Shown",
            following: Callable[[Hit], Hit | None] | None = None) -> str | None:
    """Show the answer to a `kind` question (one of COMPOSED) built from the passages' sentences through `shown`.
    Returns the verdict for a yes/no question ("" when the passages do not decide it), "" for the other shapes,
    or None when these rules find nothing to compose (the caller lets the model answer).

    `following(hit)` gives the chunk after a hit in its document: a how-to whose instruction ends its chunk takes
    its code from there (chunks break between blocks), and that chunk joins `hits` as one more passage."""
    if not ranked:
        return None
    if kind == "yesno":
        sentence, word = deciding(question, ranked, hits)
        if word:
            shown.verdict(word)
        shown.add(quoted(_continued(sentence, hits, kind), sentence.n), [sentence.n], "quoted")
        _also(shown, sentence, ranked, hits, kind)
        return word or ""
    if kind == "number":
        sentence, text = figure(question, hits, ranked)
        shown.add(quoted(text, sentence.n), [sentence.n], "quoted")
        _also(shown, sentence, ranked, hits, kind)
        return ""
    if kind == "howto":
        text, n = quote(ranked, hits, kind)
        best = ranked[0]
        shown.add(quoted(text, n), [n], "quoted")
        code, before = code_around(hits[n - 1].text, best.position)
        source = n
        if code is None and following is not None:
            after = following(hits[n - 1])
            opening = list(itertools.takewhile(is_code, paragraphs(after.text))) if after is not None else []
            if opening:
                hits.append(after)
                shown.passages.append(after.text)
                code, source = _cut_code(_span(after.text, opening[0], opening[-1])), len(hits)
        code = code or before
        if code:
            shown.add(f"```\n{code}\n```", [source], "code")
        _also(shown, best, ranked, hits, kind)
        return ""
    if kind == "comparison":
        pair = questions.sides(question)
        if pair is None:
            return None
        chosen: list[Sentence] = []
        for side in pair:
            found = _about(side, ranked, chosen)
            if found is not None:
                chosen.append(found)
        if not chosen:
            return None
        if len(chosen) == 1 and ranked[0] not in chosen:
            chosen.append(ranked[0])
        for sentence in chosen:
            shown.add(quoted(sentence.text, sentence.n), [sentence.n], "quoted")
        return ""
    return None


_COMMENT_MARK = re.compile(r'^\s*(?:"""|\'\'\'|#+|//+|/\*+|\*+)\s*|\s*(?:"""|\'\'\'|\*+/)\s*$')


def quoted(text: str, n: int) -> str:
    """A passage's sentence as an answer quotes it: in quote marks, cited, without a list item's bullet or the
    docstring or comment marks of a code file's sentence."""
    return f'"{_COMMENT_MARK.sub("", LIST_MARK.sub("", text))}" [{n}]'


def deciding(question: str, ranked: list[Sentence], hits: list[Hit] | None = None) -> tuple[Sentence, str | None]:
    """The sentence that decides a yes/no question and its verdict. Of the sentences within DECIDING_MARGIN of
    the best, ranked again with the share of the question's content words each holds (the deciding sentence
    names what is asked) and conclusions ("These results suggest …") first, the first that states a verdict. With
    `hits`, advice against in the sentence's `continuation` makes a "yes" a "no" ("It is possible to make an
    argument required … It is not recommended since …"); a negation there does not ("… will be closed when the
    CLI exits. These were previously not called on exit.")."""
    wanted = content_words(question)

    def key(s: Sentence) -> tuple:
        held = _share(wanted, word_set(f"{s.text} {s.about}"))
        return (not questions.CONCLUSION.match(s.text), -(s.score + OVERLAP_WEIGHT * held))

    close = sorted((s for s in ranked if ranked[0].score - s.score <= DECIDING_MARGIN), key=key)
    for sentence in close:
        word = questions.verdict(question, sentence.text, sentence.about)
        if word == "yes" and hits is not None and questions.advised_against(question, _continued(sentence, hits, "yesno")):
            word = "no"
        if word:
            return sentence, word
    return ranked[0], None


def _also(shown: "_Shown", taken: Sentence, ranked: list[Sentence], hits: list[Hit], kind: str) -> None:
    """After a composed answer's sentence `taken`, quote the `runner_up` to it, as after a model's answer."""
    also = runner_up([taken] + [s for s in ranked if s is not taken], shown.text)
    if also is not None:
        shown.add(quoted(_continued(also, hits, kind), also.n), [also.n], "quoted")


def _continued(sentence: Sentence, hits: list[Hit], kind: str) -> str:
    more = continuation(hits[sentence.n - 1].text, sentence.position, kind, sentence.text)
    return f"{sentence.text} {more}" if more else sentence.text


def figure(question: str, hits: list[Hit], ranked: list[Sentence]) -> tuple[Sentence, str]:
    """(the sentence, the text to quote) for a number question: of the sentences within DECIDING_MARGIN of the
    best, each with its `continuation` ("…how many fields can be parsed. It is set to 1000 by default."), the one
    whose text holds a figure and most of the question's content words ("by default" asks for "Default: 4093")."""
    wanted = content_words(question)
    best, best_key, best_text = ranked[0], None, ranked[0].text
    for sentence in ranked:
        if ranked[0].score - sentence.score > DECIDING_MARGIN:
            break
        text = _continued(sentence, hits, "number")
        held = _share(wanted, word_set(text))
        key = sentence.score + NUMBER_BONUS * bool(re.search(r"\d", text)) + OVERLAP_WEIGHT * held
        if best_key is None or key > best_key:
            best, best_key, best_text = sentence, key, text
    return best, best_text


def code_around(text: str, position: int) -> tuple[str | None, str | None]:
    """(the first code block after the passage's sentence at `position`, the last one before it), verbatim and cut
    at MAX_CODE_LINES: an instruction introduces its code, so the one after goes with it first. Code paragraphs
    with no prose between them are one block (a Markdown fence or a literal block with blank lines inside)."""
    units = passage_units(text)
    kinds, blocks = [kind for kind, _ in units], [block for _, block in units]
    after = next((i for i in range(position + 1, len(kinds)) if kinds[i] == "code"), None)
    before = next((i for i in range(position - 1, -1, -1) if kinds[i] == "code"), None)
    if before is not None:
        while before > 0 and kinds[before - 1] == "code":
            before -= 1
    return _code_run(text, blocks, kinds, after), _code_run(text, blocks, kinds, before)


def _code_run(text: str, blocks: list[str], kinds: list[str], start: int | None) -> str | None:
    """The code units from `start` up to the next prose, as `text` has them (blank lines kept), cut at
    MAX_CODE_LINES (None for None)."""
    if start is None:
        return None
    end = start
    while end + 1 < len(kinds) and kinds[end + 1] == "code":
        end += 1
    return _cut_code(_span(text, blocks[start], blocks[end]))


def _span(text: str, first: str, last: str) -> str:
    """`text` from where `first` begins to where `last` (found after it) ends."""
    begin = text.find(first)
    finish = text.find(last, begin + len(first)) if first != last else begin
    return text[begin:finish + len(last)] if begin >= 0 and finish >= 0 else first


def _cut_code(block: str) -> str:
    lines = block.split("\n")
    return "\n".join(lines[:MAX_CODE_LINES] + (["…"] if len(lines) > MAX_CODE_LINES else []))


def _next_chunk(searcher: "Searcher") -> Callable[[Hit], Hit | None]:
    """`following` for `compose`: the chunk after a hit in its document, from the index's SQLite store."""

    def following(hit: Hit) -> Hit | None:
        store = getattr(searcher, "store", None)
        if store is None:
            return None
        rows = store.chunks_of_document(hit.doc_id)
        at = next((i for i, r in enumerate(rows) if r.chunk_id == hit.chunk_id), None)
        if at is None or at + 1 >= len(rows):
            return None
        return Hit.of(rows[at + 1], folder=hit.folder)

    return following


def _about(side: str, ranked: list[Sentence], taken: list[Sentence]) -> Sentence | None:
    """The best-ranked sentence not yet taken that names every content word of `side` (else most of them)."""
    wanted = set(content_words(side))
    best, held = None, 0
    for sentence in ranked:
        if sentence in taken or any(t.text == sentence.text for t in taken):
            continue
        count = len(wanted & word_set(sentence.text))
        if count == len(wanted):
            return sentence
        if count > held:
            best, held = sentence, count
    return best


# A second sentence is quoted when it ranks this close to the best: the sentence ranked first holds the fact asked
# for in ~40 % of the real-manual questions, the best two ~55 %. At 0.05, and only after a model's answer or a
# figure, answers stated the gold fact for 51 % of Flask's and 46 % of Click's questions (29 and 27 words median);
# at 0.2 after every composed answer too, 56 % and 53 % (43 and 42 words); 0.3 added nothing more
# (benchmarks/manual_qa_bench.py).
RUNNER_UP_MARGIN = 0.2
RUNNER_UP_NEW_WORDS = 3  # and names at least this many content words the answer does not yet


def runner_up(ranked: list[Sentence], answer: str) -> Sentence | None:
    """The best-ranked sentence the answer does not already say, when it ranks within RUNNER_UP_MARGIN of the
    best (the ranking cannot tell the two apart, so the answer gives both) and adds RUNNER_UP_NEW_WORDS."""
    said = word_set(answer)
    for sentence in ranked[1:]:
        if ranked[0].score - sentence.score > RUNNER_UP_MARGIN:
            return None
        if sentence.text in answer:
            continue
        if sum(w not in said for w in content_words(sentence.text)) >= RUNNER_UP_NEW_WORDS:
            return sentence
    return None


def supporting(answer: str, question: str, ranked: list[Sentence]) -> Sentence | None:
    """The best-ranked sentence that holds every content word the model's answer adds to the question, from the
    passage it cites when that one has such a sentence; None when there is none or when the answer already says
    most of it (quoting it again would repeat it)."""
    cited = cited_numbers(answer)
    bare = CITATION.sub(" ", answer)
    added = _added_words(bare, question)
    if not added:
        return None
    holding = [s for s in ranked if all(w in word_set(s.text) for w in added)]
    if not holding:
        return None
    best = next((s for s in holding if s.n in cited), holding[0])
    said = set(content_words(bare))
    theirs = content_words(best.text)
    if theirs and sum(w in said for w in theirs) >= 0.8 * len(theirs):
        return None
    return best


def _verbatim(text: str, passages: list[str]) -> bool:
    """Whether `text` (markers removed) occurs word for word in one of `passages`."""
    key = " ".join(re.findall(r"\w+", text.lower()))
    return len(key.split()) >= 4 and any(key in " ".join(re.findall(r"\w+", p.lower())) for p in passages)


# -- prompts ----------------------------------------------------------------------------------------------
# A base model (no chat template: GPT-2, Gemma 3 270M) continues text, so its prompt shows one worked example of
# the answer's form: a phrase from the text on the "Answer:" line, with the text's number, then a new line (the stop).
# Without it Gemma 3 270M went on to a new line after "Answer:" and wrote another numbered passage or question
# ("[2] What was the Eiffel Tower's height?"), which the check rightly dropped, leaving only the quote.
COMPLETION_EXAMPLE = (
    f"{INSTRUCTION} Cite the text's number.\n\nText:\n[1] Paris is the capital and largest city of France.\n"
    "Question: What is the capital of France?\nAnswer: Paris [1]\n\n"
)


def _render(generator: "Generator", question: str, context: str, example: bool = True) -> str:
    if generator.chat:
        user = f"Question: {question}\n\nText:\n{context}\n\n{INSTRUCTION}"
        return generator.render_chat([{"role": "user", "content": user}])
    return f"{COMPLETION_EXAMPLE if example else ''}Text:\n{context}\nQuestion: {question}\nAnswer:"


def build_prompt(
    generator: "Generator", question: str, hits: list[Hit], max_tokens: int, focus: list[Sentence] | None = None
) -> tuple[str, list[int]]:
    """The prompt, and the numbers of the passages it shows (passage n is hits[n - 1]).

    With `focus` (sentences, best first) the context is the best sentences up to FOCUS_TOKENS, each passage's
    under its number in reading order. Without it, whole passages best first while they fit, the first that
    does not cut to the room left. Either way prompt + answer stay inside the model's window: a question too
    long for it is cut, and so is a single sentence longer than the room."""
    budget = generator.prompt_budget(max_tokens)
    # The worked example of a completion prompt, where it leaves room (not in a 1,024-token window for 900 answer tokens).
    example = generator.chat or generator.count_tokens(COMPLETION_EXAMPLE) <= budget // 4
    overhead = generator.count_tokens(_render(generator, question, "", example))
    if overhead > budget // 2:  # a question that would crowd out the passages: keep its start
        bare = generator.count_tokens(_render(generator, "", "", example))
        question = generator.truncate(question, max(8, budget // 2 - bare))
        overhead = generator.count_tokens(_render(generator, question, "", example))
    room = max(0, budget - overhead - 4)  # a few tokens for merges across the joins
    if focus:
        room = min(room, FOCUS_TOKENS)
        chosen: list[Sentence] = []
        for sentence in focus:
            cost = generator.count_tokens(sentence.text) + 4  # its label and separator
            if chosen and cost > room:
                break
            if not chosen and cost > room:
                sentence = Sentence(sentence.n, sentence.position, generator.truncate(sentence.text, room - 4), 0.0)
                cost = room
            chosen.append(sentence)
            room -= cost
        shown = sorted({s.n for s in chosen})
        blocks = [
            f"[{n}] " + " ".join(s.text for s in sorted(chosen, key=lambda s: s.position) if s.n == n) for n in shown
        ]
    else:
        room = min(room, PASSAGE_TOKENS_CAP)
        blocks, shown = [], []
        for n, hit in enumerate(hits, start=1):
            block = f"[{n}] {hit.text}"
            cost = generator.count_tokens(block) + 2
            if cost > room:
                if room < MIN_PASSAGE_TOKENS:
                    break
                block, cost = generator.truncate(block, room - 2), room
            blocks.append(block)
            shown.append(n)
            room -= cost
            if room < MIN_PASSAGE_TOKENS:
                break
    prompt = _render(generator, question, "\n".join(blocks), example)
    while blocks and generator.count_tokens(prompt) > budget:  # the parts did not add up exactly: trim the last
        over = generator.count_tokens(prompt) - budget
        blocks[-1] = generator.truncate(blocks[-1], max(0, generator.count_tokens(blocks[-1]) - over - 4))
        if generator.count_tokens(blocks[-1]) < 8:
            blocks.pop()
            shown.pop()
        prompt = _render(generator, question, "\n".join(blocks), example)
    return prompt, shown
