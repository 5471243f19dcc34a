"""Yes/no probe (issue #21): would SmolLM2's own yes/no decide where the verdict rules do not? For every yes/no
question of the Flask and Click QA sets and the sample corpus's yes/no dev set (never the held-out Jinja set), the
sentence `deciding` picks, then P("Yes") against P("No") from the model (transformers, its chat template) after
that sentence with its continuation and the question. Prints how often the rules, the model, and the rules then
the model are right. Needs the indexes `manual_qa_bench.py` builds (Flask and Click) and one of sample_corpus.

    python benchmarks/probes/yesno_lm.py FLASK_HOME CLICK_HOME SAMPLE_HOME    # homes holding flask, click, sample
"""
import collections
import json
import sys
from pathlib import Path

import torch

from searchlm.generate import registry
from searchlm.generate.hf import load_transformers
from searchlm.index import Index
from searchlm.search import answer as A
from searchlm.search.searcher import SearchOptions

HERE = Path(__file__).resolve().parent.parent
SETS = [("flask", sys.argv[1], HERE / "manual_qa_questions.jsonl"), ("click", sys.argv[2], HERE / "manual_qa2_questions.jsonl"),
        ("sample", sys.argv[3], HERE / "yesno_dev.jsonl")]

generator = load_transformers(*registry.resolve_generator(None), "cpu")
tok, model = generator.tokenizer, generator.model
YES = sorted({tok.encode(w, add_special_tokens=False)[0] for w in ("Yes", " Yes", "yes", " yes")})
NO = sorted({tok.encode(w, add_special_tokens=False)[0] for w in ("No", " No", "no", " no")})
count = collections.Counter()
for name, home, questions in SETS:
    with Index(name=name, home=home) as index:
        searcher = index.searcher
        for row in map(json.loads, open(questions, encoding="utf-8")):
            if row.get("verdict") is None or row.get("type") not in (None, "yesno"):
                continue
            q = row["question"]
            hits = searcher.search(q, SearchOptions(k=5)).hits
            _, ranked = A.weigh_evidence(searcher, q, hits)
            sentence, word = A.deciding(q, ranked, hits)
            context = A._continued(sentence, hits, "yesno")
            prompt = generator.render_chat([{"role": "user", "content": f"Passage: {context}\n\nQuestion: {q}\n"
                                                                       "Answer yes or no, from the passage."}])
            with torch.no_grad():
                logits = torch.log_softmax(model(torch.tensor([tok.encode(prompt, add_special_tokens=False)])).logits[0, -1], -1)
            lm = "yes" if torch.logsumexp(logits[YES], 0) > torch.logsumexp(logits[NO], 0) else "no"
            want = row["verdict"]
            count["questions"] += 1
            count["rules right"] += word == want
            count["rules undecided"] += word is None
            count["model right"] += lm == want
            count["model right where the rules are undecided"] += word is None and lm == want
            count["rules, else the model, right"] += (word or lm) == want
            count["'no' for all right"] += want == "no"
for key, value in count.items():
    print(f"{key:45} {value}")
