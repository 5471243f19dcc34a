"""Answer benchmark: `searchlm ask` over XQuAD (English), plus questions the corpus cannot answer.

Indexes xquad_en's 240 paragraphs (one Markdown file per paragraph, `# Title` then the text) into a temporary
index home, loads the generator once (a warm process, as `searchlm serve` keeps it), and asks a seeded sample of
the 1,190 questions. Reports, over the sample:

  contains-gold        the answer (citation markers removed) contains a gold answer, both SQuAD-normalized
  token F1             SQuAD token F1 against the best gold answer
  first citation       the answer's first citation is the gold paragraph (refusals and uncited answers count
                       as wrong)
  refusal rate         share of these answerable questions refused (= false refusals)
  first token / total  median seconds from the end of retrieval to the first answer token, and for the whole
                       `ask` call (retrieval included)

and, on benchmarks/out_of_corpus_questions.jsonl (50 questions whose answers xquad does not hold), the share
correctly refused. Timings depend on what else runs on the machine: report the load with them.

    python benchmarks/answer_bench.py --n 150                # a sample while iterating
    python benchmarks/answer_bench.py --n 0 --out all.json   # every question
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import string
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "datasets" / "xquad_en"
OOC = HERE / "out_of_corpus_questions.jsonl"
MARKERS = re.compile(r"\[\d+\]")


# -- SQuAD v1.1 evaluation, as in the official script ----------------------------------------------------
def normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1(prediction: str, gold: str) -> float:
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def contains_gold(prediction: str, golds: list[str]) -> bool:
    p = f" {normalize(prediction)} "
    return any(f" {normalize(g)} " in p for g in golds if normalize(g))


# -- setup ------------------------------------------------------------------------------------------------
def build_index(data: Path, home: Path, name: str):
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    settings = Settings(home=home, name=name)
    if (settings.index_dir / "manifest.json").is_file():
        return settings
    corpus = home.parent / "xquad_corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for line in open(data / "corpus.jsonl", encoding="utf-8"):
        doc = json.loads(line)
        title = doc["title"].replace("_", " ")
        (corpus / f"{doc['_id']}.md").write_text(f"# {title}\n\n{doc['text']}\n", encoding="utf-8")
    started = time.perf_counter()
    report = index_folder(corpus, settings)
    print(f"indexed {report.chunks_total} chunks in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return settings


def load_questions(data: Path, n: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in open(data / "qa.jsonl", encoding="utf-8")]
    if 0 < n < len(rows):
        rows = random.Random(seed).sample(rows, n)
    return rows


# -- run --------------------------------------------------------------------------------------------------
def run(args) -> dict:
    from searchlm.search.answer import AskOptions, ask
    from searchlm.generate import get_generator
    from searchlm.search.searcher import Searcher

    if args.focus_tokens is not None:
        import searchlm.search.answer

        searchlm.search.answer.FOCUS_TOKENS = args.focus_tokens
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="answer-bench-")) / "home"
    settings = build_index(Path(args.data), home, "xquad")
    searcher = Searcher(settings)
    searcher.warm()
    options = AskOptions(k=args.k, generator=args.generator, max_tokens=args.max_tokens)
    started = time.perf_counter()
    generator = get_generator(args.generator, "cpu")
    load_seconds = time.perf_counter() - started
    ask(searcher, "Who won Super Bowl 50?", options, generator=generator)  # warm-up, not counted

    records = []
    questions = load_questions(Path(args.data), args.n, args.seed)
    for i, q in enumerate(questions, start=1):
        answer = ask(searcher, q["question"], options, generator=generator)
        golds = [a["text"] for a in q["answers"]]
        text = MARKERS.sub("", answer.answer)
        first = answer.citations[0] if answer.citations else None
        records.append({
            "id": q["id"], "question": q["question"], "gold": golds, "answer": answer.answer,
            "refused": answer.refused, "evidence": answer.evidence,
            "contains_gold": (not answer.refused) and contains_gold(text, golds),
            "f1": 0.0 if answer.refused else max(f1(text, g) for g in golds),
            "first_citation_correct": first is not None and Path(first.path).stem == q["context_id"],
            "top_passage_correct": bool(answer.passages) and Path(answer.passages[0].path).stem == q["context_id"],
            "first_token": answer.timings.get("first_token"), "seconds": answer.seconds,
            "retrieve": answer.timings.get("retrieve"), "shape": answer.shape,
            "kinds": [part.kind for part in answer.parts],
        })
        if args.verbose:
            r = records[-1]
            print(f"{i:4d} {'Y' if r['contains_gold'] else '.'}{'c' if r['first_citation_correct'] else '.'}"
                  f"{'R' if r['refused'] else ' '} {answer.seconds:5.1f}s  {q['question'][:60]!r} -> "
                  f"{answer.answer[:80]!r}  gold {golds[0][:30]!r}", file=sys.stderr)

    ooc_records = []
    for line in open(args.ooc, encoding="utf-8"):
        q = json.loads(line)
        answer = ask(searcher, q["question"], options, generator=generator)
        ooc_records.append({"id": q["id"], "kind": q.get("kind"), "question": q["question"], "answer": answer.answer,
                            "refused": answer.refused, "evidence": answer.evidence})
        if args.verbose:
            print(f"OOC {'R' if answer.refused else '!'} {answer.evidence:.3f} {q['question'][:60]!r} -> "
                  f"{answer.answer[:60]!r}", file=sys.stderr)

    def share(rows, key):
        return sum(bool(r[key]) for r in rows) / len(rows) if rows else 0.0

    answered = [r for r in records if not r["refused"]]
    first_tokens = [r["first_token"] for r in answered if r["first_token"] is not None]
    summary = {
        "questions": len(records),
        "seed": args.seed,
        "generator": generator.name,
        "contains_gold": share(records, "contains_gold"),
        "contains_gold_answered": share(answered, "contains_gold"),
        "token_f1": statistics.fmean(r["f1"] for r in records) if records else 0.0,
        "first_citation_correct": share(records, "first_citation_correct"),
        "top_passage_correct": share(records, "top_passage_correct"),
        "refusal_rate": share(records, "refused"),
        "median_first_token_s": statistics.median(first_tokens) if first_tokens else None,
        "median_answer_s": statistics.median(r["seconds"] for r in answered) if answered else None,
        "median_retrieve_s": statistics.median(r["retrieve"] for r in records) if records else None,
        "quoted_share": _kind_share(answered, ("quoted", "code")),
        "generated_share": _kind_share(answered, ("generated",)),
        "answers_with_a_generated_sentence": share([{"g": "generated" in r["kinds"]} for r in answered], "g"),
        "shapes": dict(Counter(r["shape"] for r in records)),
        "ooc_questions": len(ooc_records),
        "ooc_correct_refusal": share(ooc_records, "refused"),
        "generator_load_s": load_seconds,
        "load_average": os.getloadavg()[0],
    }
    return {"summary": summary, "questions": records, "out_of_corpus": ooc_records}


def _kind_share(rows: list[dict], kinds: tuple[str, ...]) -> float:
    """Share of the answers' sentences (verdict words aside) of these kinds."""
    parts = [k for r in rows for k in r["kinds"] if k != "verdict"]
    return sum(k in kinds for k in parts) / len(parts) if parts else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=150, help="questions to sample (0: all 1,190)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--generator", default=None, help="generator name or path (default smollm2)")
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--ooc", default=str(OOC))
    parser.add_argument("--home", default=None, help="index home to build in / reuse (default: a temp folder)")
    parser.add_argument("--out", default=None, help="write per-question results here (JSON)")
    parser.add_argument("--focus-tokens", type=int, default=None, help="override answer.FOCUS_TOKENS (experiments; 0: whole passages)")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args()
    result = run(args)
    s = result["summary"]
    print(f"questions {s['questions']} (seed {s['seed']}), generator {s['generator']}, load avg {s['load_average']:.1f}")
    print(f"  contains-gold          {s['contains_gold']:.1%}   (of answered: {s['contains_gold_answered']:.1%})  target >= 50%")
    print(f"  token F1               {s['token_f1']:.3f}")
    print(f"  sentences quoted       {s['quoted_share']:.1%}   generated {s['generated_share']:.1%}   "
          f"(answers with a generated sentence {s['answers_with_a_generated_sentence']:.1%}); shapes {s['shapes']}")
    print(f"  first citation correct {s['first_citation_correct']:.1%}   (top passage correct {s['top_passage_correct']:.1%})  target >= 85%")
    print(f"  refusal rate (false)   {s['refusal_rate']:.1%}   target <= 10%")
    print(f"  out-of-corpus refused  {s['ooc_correct_refusal']:.1%} of {s['ooc_questions']}   target >= 80%")
    ft, total = s["median_first_token_s"], s["median_answer_s"]
    print(f"  median first token     {ft:.2f} s after retrieval   target <= 1.5 s" if ft is not None else "  no answers")
    print(f"  median answer          {total:.2f} s (retrieval {s['median_retrieve_s']:.2f} s)" if total else "")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
