"""Held-out manual QA benchmark: `ask` on questions about a real manual, written before any searchlm run on it.

Indexes a real project's docs folder (from its PyPI sdist) into an index home, loads the generator once (warm, as
`searchlm serve` keeps it), asks every question of a questions file (how-to, yes/no, what, comparison, why,
number) and reports, overall and per question type. Two sets:

  benchmarks/manual_qa_questions.jsonl   61 questions on Flask 3.1.2's Sphinx docs (the default; the answer
                                         composer has since been tuned on it, so it is no longer held out)
  benchmarks/manual_qa2_questions.jsonl  89 questions on Click 8.2.1's docs (reST and MyST Markdown pages),
                                         written from reading the docs and committed before any searchlm run on them

Each line: id, type, question, gold (short strings from the docs, any one of which a correct answer states),
expected (pages, relative to the docs folder, that hold the answer), source_line (where the first gold string
starts in the first expected page's source), verdict ("yes"/"no", yes/no questions), changelog (true when the
changelog uses the question's words too).

Reported:

  hit@k            an expected page among the answer's k retrieved passages (the search `ask` ran)
  guide first      the first passage is a guide page, not the changelog (changes.rst); reported for how-to
                   questions, with "expected first" (the first passage is an expected page); also how often the
                   changelog is among the k passages and how often the answer's first citation is the changelog
  states gold      the answer (citation markers removed) contains a gold string: case-insensitive, whitespace
                   and quote characters normalised; a refusal counts as wrong
  first citation   supports the fact: its passage text contains a gold string ("text"), or its page is an expected
                   page ("page"); no citation counts as wrong
  verdict right    yes/no questions: the answer's `verdict` ("yes"/"no"/"maybe"), else "yes"/"no" when the answer
                   text starts with that word
  quoted share     sentences quoted from a passage vs generated, from the answer's `sentences` when it has them,
                   else per answer from `Answer.extractive` (a quoted sentence stood in for the model's text)
  refusals         should be 0: every question is answered by the docs
  seconds          median per `ask` (retrieval included) and median first token after retrieval, with the load
                   average (1 min) before and after: on a shared machine the timings follow the load

The changelog (--changelog, default changes.rst): in both manuals docs/changes.rst is one
`.. include:: ../CHANGES.rst` line, which the reST reader drops, so indexing docs/ as is leaves the changelog out.
A Sphinx reader sees it on the changes page, so by default the benchmark indexes a copy of docs/ with each
top-level `.. include::` replaced by the file it names (--raw: the folder as is). Questions marked
"changelog": true use words the changelog also uses, so a changelog passage competes; in the Click set three of
them are answered only by the changelog (expected ["changes.rst"]).

`--check` needs no model and runs no search: it renders each expected page of the staged copy with the reader its
suffix picks (reST or Markdown, as the index does) and reports questions whose gold strings are not in it (a check
of the questions file).

Flask (the default --docs and --questions):

    pip download --no-deps --no-binary :all: flask==3.1.2 -d /tmp/manuals && tar xzf /tmp/manuals/flask-3.1.2.tar.gz -C /tmp/manuals
    python benchmarks/manual_qa_bench.py --check
    nice python benchmarks/manual_qa_bench.py --home /tmp/manual-qa-home --out /tmp/manual-qa.json        # all questions
    nice python benchmarks/manual_qa_bench.py --home /tmp/manual-qa-home --n 10 -v                       # the first 10

Click (the second held-out set):

    pip download --no-deps --no-binary :all: click==8.2.1 -d /tmp/manuals2 && tar xzf /tmp/manuals2/click-8.2.1.tar.gz -C /tmp/manuals2
    python benchmarks/manual_qa_bench.py --docs /tmp/manuals2/click-8.2.1/docs --questions benchmarks/manual_qa2_questions.jsonl --check
    nice python benchmarks/manual_qa_bench.py --docs /tmp/manuals2/click-8.2.1/docs --questions benchmarks/manual_qa2_questions.jsonl \
        --home /tmp/qa2-home --out /tmp/manual-qa2.json -v
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
DOCS = Path("/tmp/manuals/flask-3.1.2/docs")
CHANGELOG = "changes.rst"  # the default --changelog; score() reads the module global, set from the flag in main()
MARKERS = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
QUOTES = re.compile(r"[\u2018\u2019\u201c\u201d\"`]")
INCLUDE = re.compile(r"^\.\. include:: (\S+)\s*$", re.M)
TYPES = ("howto", "yesno", "what", "comparison", "why", "number")


def normalize(text: str) -> str:
    """Lower case, one space for any whitespace, one quote character for every kind of quote."""
    return " ".join(QUOTES.sub("'", text).lower().split())


def contains_any(text: str, golds: list[str]) -> bool:
    t = normalize(text)
    return any(normalize(g) in t for g in golds if normalize(g))


def load_questions(path: Path, n: int) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:n] if n > 0 else rows


# -- the corpus ----------------------------------------------------------------------------------------------
def stage(docs: Path, target: Path) -> Path:
    """A copy of `docs` with each top-level `.. include:: FILE` replaced by FILE's text (as Sphinx shows it)."""
    shutil.copytree(docs, target, dirs_exist_ok=True)
    for page in target.rglob("*.rst"):
        source = docs / page.relative_to(target)
        text = source.read_text(encoding="utf-8")

        def inline(m: re.Match) -> str:
            included = (source.parent / m.group(1)).resolve()
            return included.read_text(encoding="utf-8") if included.is_file() else m.group(0)

        staged = INCLUDE.sub(inline, text)
        if page.read_text(encoding="utf-8") != staged:
            page.write_text(staged, encoding="utf-8")
    return target


def check(docs: Path, questions: list[dict], raw: bool = False) -> int:
    """Questions whose gold strings are not in the rendered text of an expected page (no model needed). Pages are
    read from the staged copy (includes inlined, unless `raw`) with the reader their suffix picks and the folder's
    reST and MyST targets, as the index reads them."""
    from searchlm.extract import extract
    from searchlm.extract.targets import scan_targets

    with tempfile.TemporaryDirectory(prefix="manual-qa-check-") as tmp:
        corpus = docs if raw else stage(docs, Path(tmp) / "docs")
        targets = scan_targets(sorted([*corpus.rglob("*.rst"), *corpus.rglob("*.md")]))
        bad = 0
        for q in questions:
            for rel in q["expected"]:
                page = corpus / rel
                if not page.is_file():
                    bad += 1
                    print(f"{q['id']} {rel}: no such page in {docs}")
                    continue
                doc = extract(page, targets=targets)
                headings = dict.fromkeys(h for b in doc.blocks for h in b.headings)  # section titles, once each
                if not contains_any(" ".join([doc.title, *headings] + [b.text for b in doc.blocks]), q["gold"]):
                    bad += 1
                    print(f"{q['id']} {rel}: none of {q['gold']} in the rendered page")
    print(f"{len(questions)} questions, {bad} expected pages without a gold string")
    return bad


# -- one answer ------------------------------------------------------------------------------------------------
def verdict_of(answer, data: dict) -> tuple[str | None, str]:
    """The answer's verdict and where it came from: its `verdict` field, else the answer's first word."""
    if "verdict" in data:
        return data.get("verdict"), "field"
    words = re.findall(r"[a-z]+", MARKERS.sub("", answer.answer).lower()[:20])
    first = words[0] if words else ""
    return (first if first in ("yes", "no") else None), "first word"


def sentence_kinds(answer, data: dict) -> tuple[int, int, str]:
    """(quoted, generated) sentences and where they came from: the answer's `sentences`, else `extractive`."""
    sentences = data.get("sentences")
    if sentences is not None:
        quoted = sum(1 for s in sentences if s.get("kind") == "quoted")
        return quoted, len(sentences) - quoted, "sentences"
    if answer.refused:
        return 0, 0, "extractive"
    return (1, 0, "extractive") if answer.extractive else (0, 1, "extractive")


def relative(path: str, root: Path) -> str:
    p = Path(path)
    p = p if p.is_absolute() else Path.cwd() / p
    try:
        return str(p.resolve().relative_to(root))
    except ValueError:
        return path


def score(q: dict, answer, root: Path) -> dict:
    data = answer.to_json()
    pages = [relative(h.path, root) for h in answer.passages]
    first = answer.citations[0] if answer.citations else None
    text = MARKERS.sub("", answer.answer)
    verdict, verdict_from = verdict_of(answer, data)
    quoted, generated, kinds_from = sentence_kinds(answer, data)
    record = {
        "id": q["id"], "type": q["type"], "question": q["question"], "gold": q["gold"], "expected": q["expected"],
        "changelog_question": bool(q.get("changelog")),
        "answer": answer.answer, "refused": answer.refused, "evidence": answer.evidence,
        "pages": pages,
        "hit": any(p in q["expected"] for p in pages),
        "first_changelog": bool(pages) and pages[0] == CHANGELOG,
        "cite_changelog": first is not None and relative(first.path, root) == CHANGELOG,
        "first_expected": bool(pages) and pages[0] in q["expected"],
        "changelog_in_top": CHANGELOG in pages,
        "states_gold": (not answer.refused) and contains_any(text, q["gold"]),
        "first_citation_page": relative(first.path, root) if first else None,
        "cite_text": first is not None and contains_any(first.text, q["gold"]),
        "cite_page": first is not None and relative(first.path, root) in q["expected"],
        "verdict": verdict, "verdict_from": verdict_from,
        "verdict_right": (verdict == q["verdict"]) if q.get("verdict") else None,
        "quoted": quoted, "generated": generated, "kinds_from": kinds_from,
        "seconds": answer.seconds, "first_token": answer.timings.get("first_token"),
        "retrieve": answer.timings.get("retrieve"),
    }
    return record


# -- the report --------------------------------------------------------------------------------------------------
def share(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r[key] is not None]
    return sum(bool(v) for v in values) / len(values) if values else None


def summarize(records: list[dict]) -> dict:
    answered = [r for r in records if not r["refused"]]
    first_tokens = [r["first_token"] for r in answered if r["first_token"] is not None]
    quoted = sum(r["quoted"] for r in records)
    generated = sum(r["generated"] for r in records)
    howto = [r for r in records if r["type"] == "howto"]
    return {
        "questions": len(records),
        "hit_at_k": share(records, "hit"),
        "first_changelog": share(records, "first_changelog"),
        "changelog_in_top": share(records, "changelog_in_top"),
        "first_citation_changelog": share(records, "cite_changelog"),
        "howto_guide_first": 1 - share(howto, "first_changelog") if howto else None,
        "howto_expected_first": share(howto, "first_expected") if howto else None,
        "changelog_questions_guide_first": (1 - share(cl, "first_changelog"))
        if (cl := [r for r in records if r["changelog_question"]]) else None,
        "states_gold": share(records, "states_gold"),
        "cite_text": share(records, "cite_text"),
        "cite_page": share(records, "cite_page"),
        "verdict_right": share(records, "verdict_right"),
        "verdict_from": sorted({r["verdict_from"] for r in records if r["verdict_right"] is not None}),
        "quoted_share": quoted / (quoted + generated) if quoted + generated else None,
        "kinds_from": sorted({r["kinds_from"] for r in records}),
        "refusals": sum(r["refused"] for r in records),
        "median_seconds": statistics.median(r["seconds"] for r in records) if records else None,
        "median_first_token_s": statistics.median(first_tokens) if first_tokens else None,
    }


def pct(value: float | None) -> str:
    return "   -" if value is None else f"{value:4.0%}"


def print_report(records: list[dict], summary: dict, k: int) -> None:
    print(f"\n{'type':<11}{'n':>3}  hit@{k}  gold  cite-text  cite-page  verdict  refused  median s")
    for t in TYPES + ("all",):
        rows = records if t == "all" else [r for r in records if r["type"] == t]
        if not rows:
            continue
        print(f"{t:<11}{len(rows):>3}  {pct(share(rows, 'hit')):>5}  {pct(share(rows, 'states_gold'))}"
              f"  {pct(share(rows, 'cite_text')):>9}  {pct(share(rows, 'cite_page')):>9}"
              f"  {pct(share(rows, 'verdict_right')):>7}  {sum(r['refused'] for r in rows):>7}"
              f"  {statistics.median(r['seconds'] for r in rows):8.1f}")
    s = summary
    print(f"\nhit@{k}                     {pct(s['hit_at_k'])}")
    print(f"first passage changelog    {pct(s['first_changelog'])}  (how-to: guide first {pct(s['howto_guide_first'])},"
          f" expected page first {pct(s['howto_expected_first'])};"
          f" changelog-worded questions guide first {pct(s['changelog_questions_guide_first'])})")
    print(f"changelog in the top {k}     {pct(s['changelog_in_top'])}; first citation is the changelog "
          f"{pct(s['first_citation_changelog'])}")
    print(f"answer states gold         {pct(s['states_gold'])}")
    print(f"first citation supports    {pct(s['cite_text'])} by its text, {pct(s['cite_page'])} by its page")
    print(f"yes/no verdict right       {pct(s['verdict_right'])}  (from {', '.join(s['verdict_from']) or '-'})")
    print(f"quoted sentences           {pct(s['quoted_share'])}  (from {', '.join(s['kinds_from'])})")
    print(f"refusals                   {s['refusals']} of {s['questions']}")
    ft = s["median_first_token_s"]
    print(f"median ask                 {s['median_seconds']:.2f} s; first token {ft:.2f} s after retrieval"
          if ft is not None else f"median ask                 {s['median_seconds']:.2f} s")


def line_for(r: dict) -> str:
    flags = "".join([
        "H" if r["hit"] else ".", "C" if r["first_changelog"] else " ", "c" if r["cite_changelog"] else " ",
        "G" if r["states_gold"] else ".",
        "t" if r["cite_text"] else ".", "p" if r["cite_page"] else ".",
        {True: "V", False: "x", None: " "}[r["verdict_right"]], "R" if r["refused"] else " ",
    ])
    answer = " ".join(r["answer"].split())[:100]
    return f"{r['id']} {r['type']:<10} {flags} {r['seconds']:5.1f}s  {answer!r}"


# -- run -----------------------------------------------------------------------------------------------------------
def run(args) -> dict:
    from searchlm.search.answer import AskOptions, ask
    from searchlm.generate import get_generator
    from searchlm.index import Index

    questions = load_questions(args.questions, args.n)
    home = args.home or Path(tempfile.mkdtemp(prefix="manual-qa-")) / "home"
    corpus = args.docs if args.raw else stage(args.docs, Path(home).parent / f"{Path(home).name}-corpus")
    load_before = os.getloadavg()
    index = Index(args.name, home=home)
    started = time.perf_counter()
    report = index.update(corpus)
    index_seconds = time.perf_counter() - started
    print(f"indexed {corpus}: {report.files_seen} files, {report.chunks_total} chunks, {index_seconds:.0f} s "
          f"(load average {load_before[0]:.2f})", file=sys.stderr)
    searcher = index.searcher
    searcher.warm()
    root = Path(searcher.manifest.root).resolve()
    options = AskOptions(k=args.k, generator=args.generator)
    if args.max_tokens:
        options.max_tokens = args.max_tokens
    started = time.perf_counter()
    generator = get_generator(args.generator, args.device)
    load_seconds = time.perf_counter() - started
    ask(searcher, args.warmup, options, generator=generator)  # warm-up, not counted

    load_start = os.getloadavg()
    records = []
    for q in questions:
        answer = ask(searcher, q["question"], options, generator=generator)
        records.append(score(q, answer, root))
        if args.verbose:
            print(line_for(records[-1]), file=sys.stderr, flush=True)
    load_end = os.getloadavg()
    index.close()
    summary = summarize(records)
    summary.update({
        "generator": generator.name, "k": args.k, "max_tokens": options.max_tokens, "corpus": str(corpus),
        "questions_file": str(args.questions), "changelog": CHANGELOG,
        "raw": args.raw, "index_seconds": index_seconds, "chunks": report.chunks_total,
        "generator_load_s": load_seconds,
        "load_average_start": load_start, "load_average_end": load_end, "cpus": os.cpu_count(),
    })
    return {"summary": summary, "questions": records}


def main() -> None:
    global CHANGELOG
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=Path, default=DOCS, help="the docs folder (default: Flask 3.1.2's, unpacked)")
    parser.add_argument("--questions", type=Path, default=HERE / "manual_qa_questions.jsonl",
                        help="questions file (default: the Flask set; benchmarks/manual_qa2_questions.jsonl: Click)")
    parser.add_argument("--changelog", default=CHANGELOG, help="the changelog page, relative to --docs (default: %(default)s)")
    parser.add_argument("--warmup", default=None, help="warm-up question, not counted (default: 'What is NAME?')")
    parser.add_argument("--home", type=Path, default=None, help="index home to build in / reuse (default: a temp folder)")
    parser.add_argument("--name", default=None, help="index name inside the home (default: the project's name, "
                        "from the folder above --docs, e.g. flask, click)")
    parser.add_argument("--out", type=Path, default=None, help="write the summary and per-question results here (JSON)")
    parser.add_argument("--n", type=int, default=0, help="ask the first N questions (0: all)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=None, help="default: AskOptions' default")
    parser.add_argument("--generator", default=None, help="generator name or path (default smollm2)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--raw", action="store_true", help="index --docs as is (its changes.rst include is dropped)")
    parser.add_argument("--check", action="store_true", help="only check the gold strings against the pages (no model)")
    parser.add_argument("--verbose", "-v", action="store_true", help="print each question's line as it is answered")
    args = parser.parse_args()
    if not args.docs.is_dir():
        sys.exit(f"docs folder '{args.docs}' not found (see the commands at the top of {Path(__file__).name})")
    if not args.questions.is_file():
        sys.exit(f"questions file '{args.questions}' not found (see --help)")
    CHANGELOG = args.changelog
    project = re.sub(r"[-_.]?\d[\w.]*$", "", args.docs.resolve().parent.name) or "docs"  # click-8.2.1 -> click
    args.name = args.name or project
    args.warmup = args.warmup or f"What is {project.capitalize()}?"
    if args.check:
        sys.exit(1 if check(args.docs, load_questions(args.questions, args.n), args.raw) else 0)

    result = run(args)
    s, records = result["summary"], result["questions"]
    print(f"\n{s['questions']} questions on {s['corpus']} ({s['chunks']} chunks, indexed in {s['index_seconds']:.0f} s), "
          f"generator {s['generator']} (max_tokens {s['max_tokens']}, k {s['k']}), "
          f"load average {s['load_average_start'][0]:.2f} -> {s['load_average_end'][0]:.2f} on {s['cpus']} CPUs")
    print("\nH hit@k  C/c first passage/first citation is the changelog  G states gold  t/p first citation text/page supports  "
          "V/x verdict right/wrong  R refused")
    for r in records:
        print(line_for(r))
    print_report(records, s, args.k)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
