"""CJK keyword search: which FTS5 scheme finds words inside Chinese, Japanese and Korean text (issue #14).

    python benchmarks/cjk_keyword.py --home HOME --name NAME

HOME/NAME: an index of sample_corpus/ (e.g. `searchlm index sample_corpus --name sample --home /tmp/h`). Copies
its chunks into three in-memory FTS5 tables and runs the CJK questions of sample_corpus/QUERIES.md plus single
words (two-character Chinese words, katakana, Korean nouns that carry particles in the text):

- unicode61: the word table as it was (`porter unicode61 remove_diacritics 2`), query words OR-ed;
- trigram: FTS5's trigram tokenizer over the raw text, the query's trigrams OR-ed;
- bigram: searchlm's scheme (`searchlm.cjk`): CJK runs as overlapping bigrams, query bigrams OR-ed plus the run
  as a phrase.

Prints, per scheme, how many expected documents are in the top 3.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from searchlm import cjk  # noqa: E402
from searchlm.stores.query import fts_query  # noqa: E402

WORDS = [
    ("熊猫", "cjk/zh-giant-panda.md"), ("竹子", "cjk/zh-giant-panda.md"), ("地震", "cjk/ja-earthquake-preparedness.txt"),
    ("ラーメン", "cjk/ja-ramen-history.md"), ("김치", "cjk/ko-kimchi.md"), ("한글", "cjk/ko-hangul.md"),
    ("多头注意力", "cjk/zh-transformer-attention.md"), ("세종대왕", "cjk/ko-hangul.md"),
]


def questions() -> list[tuple[str, str]]:
    rows = []
    for line in (REPO / "sample_corpus" / "QUERIES.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*(.+?)\s*\|\s*`(.+?)`\s*\|\s*$", line)
        if m and cjk.has_cjk(m.group(1)):
            rows.append((m.group(1), m.group(2)))
    return rows


def trigram_query(text: str) -> str:
    grams = [run[i : i + 3] for run in re.findall(r"\w+", text) for i in range(max(0, len(run) - 2))]
    return " OR ".join(f'"{g}"' for g in dict.fromkeys(grams))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--name", default="sample")
    args = parser.parse_args()
    src = sqlite3.connect(f"file:{Path(args.home) / args.name / 'index.db'}?mode=ro", uri=True)
    rows = src.execute("SELECT c.id, d.path, c.title, c.heading, c.text FROM chunks c JOIN documents d ON d.id = c.doc_id").fetchall()
    path_of = {r[0]: r[1] for r in rows}
    db = sqlite3.connect(":memory:")
    schemes = {
        "unicode61": ("porter unicode61 remove_diacritics 2", lambda t: t, fts_query),
        "trigram": ("trigram", lambda t: t, trigram_query),
        "bigram": ("unicode61 remove_diacritics 0", cjk.index_text, cjk.match_query),
    }
    for name, (tokenizer, index, _) in schemes.items():
        db.execute(f"CREATE VIRTUAL TABLE {name} USING fts5(title, heading, text, tokenize='{tokenizer}')")
        db.executemany(f"INSERT INTO {name}(rowid, title, heading, text) VALUES (?, ?, ?, ?)",
                       [(i, index(t), index(h), index(x)) for i, _, t, h, x in rows])
    cases = [("word", *w) for w in WORDS] + [("question", *q) for q in questions()]
    print(f"{len(rows)} chunks; {len(WORDS)} words and {len(cases) - len(WORDS)} questions")
    for name, (_, _, query) in schemes.items():
        found = {"word": 0, "question": 0}
        for kind, text, expected in cases:
            match = query(text)
            ids = [r[0] for r in db.execute(
                f"SELECT rowid FROM {name} WHERE {name} MATCH ? ORDER BY bm25({name}, 2.0, 1.0, 1.0) LIMIT 3", [match]
            )] if match else []
            docs = [path_of[i] for i in ids]
            ok = expected in docs
            found[kind] += ok
            if not ok:
                print(f"  {name}: missed {text!r} -> {docs}")
        print(f"{name:10s} words in top 3: {found['word']}/{len(WORDS)}  questions in top 3: "
              f"{found['question']}/{len(cases) - len(WORDS)}")


if __name__ == "__main__":
    main()
