"""`searchlm adapt`: fine-tune the index's encoder on the index's own documents, with no judgments (GPL-style).

    pseudo-queries (titles, headings, sentences, SmolLM2's doc2query)  -> queries.py
    round trip + hard negatives + teacher scores from the current search -> queries.mine
    fine-tune (in-batch negatives + MarginMSE)                          -> train.py
    copy the index, re-encode it, export the ONNX encoder               -> stage.py
    tune the fusion weight, then the gate on held-out queries           -> here
    swap the adapted copy in (one atomic exchange)                      -> stage.swap_in

Everything between the start and the swap happens in `<home>/.adapt-<name>/` with its progress in `state.json`
and the candidate's database: the live index keeps answering with its old encoder until the swap, a kill at any
moment leaves it so, and running `adapt` again resumes where the killed run stopped. The gate keeps the adapted
index only if it ranks held-out generated questions' documents better than the old one by `MARGIN` (mean reciprocal
rank) and by two standard errors of the per-query gains; otherwise nothing changes (and with too few held-out
questions to judge by, nothing is trained). `undo_adapt` re-encodes with the packaged model the same way.
"""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from searchlm.errors import InputError
from searchlm.fileio import write_json_atomic
from searchlm.indexing.manifest import DB_FILE, ENCODER_DIR, Manifest
from searchlm.settings import Settings

MODEL_DIR = "adapted-encoder"  # the fine-tuned sentence-transformers model, inside the index folder
STATE_FILE = "state.json"
QUERIES_FILE = "queries.json"
HELD_OUT = 0.2  # share of documents whose queries only judge (half tune the fusion weight, half gate)
MARGIN = 0.01  # mean reciprocal rank the adapted index must gain on the gate's queries to be kept
SIGNIFICANCE = 2.0  # ... and at least this many standard errors of the per-query gains
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
MAX_STRUCTURE = 3000  # title, heading and sentence queries at most
MIN_TRAIN = 16  # fewer training queries than this: nothing to learn from
MIN_GATE = 30  # held-out generated queries the gate needs (and as many again to tune the fusion weight)
MIN_TUNE = 50  # held-out generated queries needed to tune the fusion weight (fewer: the index's weight stays)
GATE_SOURCES = ("generated", "heading", "title")  # with the gate off: a held-out sentence is found word for word
# Trained on generated questions when at least MIN_TRAIN of them passed the round trip (GPL's source); titles and
# sentences are their passages' own words (on CISI, trained on them, the encoder lost 0.041 dense nDCG@10).
TRAIN_SOURCES: tuple[str, ...] = ("generated",)


@dataclass
class AdaptReport:
    name: str
    kept: bool = False
    reason: str = ""
    finished: bool = True  # False: the time ran out first; running again resumes
    queries: dict = field(default_factory=dict)  # by source: made, passed the round trip, held out
    training: dict = field(default_factory=dict)
    dense_weight: float | None = None
    gate: dict = field(default_factory=dict)  # old/new MRR on held-out queries, hybrid and dense
    model: str = ""
    seconds: dict = field(default_factory=dict)  # by phase

    def to_json(self) -> dict:
        return asdict(self)


def adapt_index(settings: Settings, minutes: float = 30.0, sample: int | None = None, progress=None,
                on_message=None, seed: int = 0, margin: float = MARGIN, steps: int | None = None) -> AdaptReport:
    """Adapt index `settings.name`'s encoder to its documents within about `minutes` (see the module doc);
    `margin`: the held-out MRR gain the gate asks for; `steps`: at most this many training steps."""
    from searchlm.indexing.admin import _located
    from searchlm.indexing.lock import write_lock

    if minutes <= 0:
        raise InputError(f"minutes {minutes} is out of range (use a positive number, e.g. 30)")
    settings = _located(settings)
    index_dir = settings.index_dir
    with write_lock(index_dir, settings.name):
        adaptation = _Adaptation(settings, minutes, sample, progress, on_message, seed)
        adaptation.margin = margin
        adaptation.steps = steps
        return adaptation.run()


def undo_adapt(settings: Settings, progress=None, on_message=None) -> AdaptReport:
    """Give index `settings.name` its packaged encoder back: re-encoded with it, the fusion weight default."""
    from searchlm.indexing.admin import _located
    from searchlm.indexing.lock import write_lock

    settings = _located(settings)
    with write_lock(settings.index_dir, settings.name):
        return _Adaptation(settings, 0, None, progress, on_message, 0).undo()


class _Adaptation:
    def __init__(self, settings, minutes, sample, progress, on_message, seed):
        from searchlm.adapt import stage

        self.settings = settings
        self.index_dir = settings.index_dir
        self.work = stage.work_dir(self.index_dir)
        self.minutes = minutes
        self.sample = sample
        self.progress = progress or (lambda phase, done, total: None)
        self.say = on_message or (lambda text: None)
        self.seed = seed
        self.margin = MARGIN
        self.steps: int | None = None
        self.started = time.monotonic()
        self.deadline = self.started + minutes * 60
        self.times: dict[str, float] = {}
        stage.recover(self.index_dir)
        self.manifest = Manifest.load(self.index_dir)
        from searchlm.stores.base import DEFAULT_STORE, StoreSpec

        if StoreSpec.from_json(self.manifest.store).vectors != DEFAULT_STORE:
            raise InputError(f"index '{settings.name}' keeps its vectors in {self.manifest.store.get('backend')}; "
                             "adapt re-encodes indexes of the default store only",
                             "adapt an index built with the default store")

    # -- state ---------------------------------------------------------------------------------------------
    def _state(self, mode: str) -> dict:
        """The saved progress of an adaptation of this very index state, else a fresh one (old work removed)."""
        import json

        from searchlm.indexing.database import Database

        store = Database(self.index_dir / DB_FILE, existing=True)
        try:
            generation = store.generation
        finally:
            store.close()
        key = {"mode": mode, "generation": generation, "index_id": self.manifest.index_id,
               "base": self.manifest.encoder_source(self.index_dir), "seed": self.seed}
        try:
            state = json.loads((self.work / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            state = {}
        if not isinstance(state, dict) or state.get("key") != key:
            if self.work.exists():
                shutil.rmtree(self.work)
            state = {"key": key}
        self.work.mkdir(parents=True, exist_ok=True)
        self.state = state
        return state

    def _save(self) -> None:
        write_json_atomic(self.work / STATE_FILE, self.state)

    def _timed(self, phase: str, started: float) -> None:
        self.times[phase] = round(self.times.get(phase, 0.0) + time.monotonic() - started, 1)

    def _left(self) -> float:
        return self.deadline - time.monotonic()

    # -- adapt ---------------------------------------------------------------------------------------------
    def run(self) -> AdaptReport:
        from searchlm.adapt import stage
        from searchlm.indexing.database import Database

        state = self._state("adapt")
        report = AdaptReport(self.settings.name, seconds=self.times)
        store = Database(self.index_dir / DB_FILE, existing=True)
        try:
            outline = store.chunk_outline()
        finally:
            store.close()
        if not outline:
            raise InputError(f"index '{self.settings.name}' holds no passages to adapt to",
                             "index a folder into it first", f"run `searchlm index DIR --name {self.settings.name}`")
        texts = {r[0]: stage.embed_text(r[3], r[4], r[5]) for r in outline}
        base = self.manifest.encoder_source(self.index_dir)
        encode_s = self._encode_estimate(base, texts)
        if encode_s * 1.2 > self.minutes * 60 * 0.8 and "encode_started" not in state:
            need = int(encode_s * 1.2 / 60 / 0.8) + 2
            raise InputError(
                f"adapting index '{self.settings.name}' needs about {need} minutes here (re-encoding its "
                f"{len(outline):,} passages alone takes ~{encode_s / 60:.0f})", f"use minutes={need * 2}",
                f"use --minutes {need * 2}")
        # Time left for queries and training: all but the re-encoding, the gate and a margin.
        work_s = max(60.0, self.minutes * 60 - encode_s * 1.2 - 60 - self.times.get("estimate", 0))
        queries = self._queries(outline, texts, work_s * 0.45)
        by_source: dict[str, dict] = {}
        for q in queries:
            row = by_source.setdefault(q.source, {"made": 0, "usable": 0, "round_trip": 0, "held_out": 0})
            row["made"] += 1
            row["usable"] += bool(q.text)
            row["round_trip"] += q.found and not q.held_out
            row["held_out"] += q.held_out and bool(q.text)
        report.queries = by_source
        train = [q for q in queries if q.text and q.found and not q.held_out and q.negatives]
        preferred = [q for q in train if q.source in TRAIN_SOURCES]
        if len(preferred) >= MIN_TRAIN:
            train = preferred
        judged = sum(1 for q in queries if q.held_out and q.text and q.source == "generated")
        if judged < 2 * MIN_GATE and self.margin >= 0:  # the gate would refuse: spare the training and re-encoding
            return self._give_up(report, f"only {judged} held-out generated queries to judge an adapted encoder by "
                                         f"(at least {2 * MIN_GATE} are needed: give adapt more minutes or a GPU); "
                                         "nothing was trained and the index is unchanged")
        if len(train) < MIN_TRAIN:
            return self._give_up(report, f"only {len(train)} pseudo-queries passed the round trip "
                                         f"(at least {MIN_TRAIN} are needed); the index is unchanged")
        model_dir = self.work / "model"
        if "trained" not in state:
            examples = self._examples(train, texts)
            t = time.monotonic()
            train_deadline = time.monotonic() + max(30.0, self._left() - encode_s * 1.2 - 60)
            self.say(f"Fine-tuning on {len(train):,} pseudo-queries ({len(examples):,} examples)")
            from searchlm.adapt.train import fine_tune

            state["trained"] = fine_tune(base, examples, model_dir, train_deadline, epochs=3, seed=self.seed,
                                         progress=self.progress, device=_device(self.settings),
                                         max_steps=self.steps)
            state["trained"]["queries"] = {s: sum(q.source == s for q in train) for s in sorted({q.source for q in train})}
            self._timed("train", t)
            self._save()
        report.training = state["trained"]
        candidate = stage.candidate_dir(self.index_dir)
        if "encode_started" not in state:
            t = time.monotonic()
            store = Database(self.index_dir / DB_FILE, existing=True)
            try:
                stage.make_candidate(self.index_dir, store, MODEL_DIR)
            finally:
                store.close()
            shutil.copytree(model_dir, candidate / MODEL_DIR)
            self._export(candidate / MODEL_DIR, candidate / ENCODER_DIR)
            state["encode_started"] = True
            self._save()
            self._timed("export", t)
        if not state.get("encoded"):
            t = time.monotonic()
            embedder = self._embedder(str(candidate / MODEL_DIR))
            self.say(f"Re-encoding {len(outline):,} passages with the adapted encoder")
            done = stage.reencode(candidate, embedder, self.progress, deadline=self.deadline + 60)
            self._timed("encode", t)
            if not done:
                report.finished = False
                report.reason = "the time ran out while re-encoding; run adapt again to resume"
                return report
            adapted = {"model": MODEL_DIR, "base": self.manifest.model, "adapted_at": time.time(),
                       "training": state["trained"], "queries": by_source}
            manifest = Manifest.load(self.index_dir)
            manifest.adapted = adapted
            stage.finish_candidate(candidate, manifest)
            state["encoded"] = True
            self._save()
        return self._decide(report, queries, candidate)

    def _encode_estimate(self, base: str, texts: dict[int, str]) -> float:
        """Seconds to re-encode every passage, from a timed sample (the encoder loads here, once)."""
        t = time.monotonic()
        embedder = self._embedder(base)
        sample = random.Random(self.seed).sample(list(texts.values()), min(48, len(texts)))
        embedder.embed(sample[:8])  # warm up
        t0 = time.monotonic()
        embedder.embed(sample)
        per = (time.monotonic() - t0) / len(sample)
        self._timed("estimate", t)
        return per * len(texts)

    def _embedder(self, model: str):
        from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(model, device=_device(self.settings))

    def _queries(self, outline, texts, budget_s: float):
        """Pseudo-queries, generated and mined (resumed from queries.json)."""
        import json

        from searchlm.adapt import queries as pq
        from searchlm.search.searcher import Searcher

        path = self.work / QUERIES_FILE
        try:
            saved = pq.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            saved = []
        state = self.state
        if not state.get("structure"):
            saved = pq.structure_queries(outline, MAX_STRUCTURE, self.seed)
            for q in saved:
                q.held_out = pq.held_out(q.doc_id, HELD_OUT)
            write_json_atomic(path, [q.to_json() for q in saved])  # (a list: write_json_atomic dumps any JSON)
            state["structure"] = True
            self._save()
        structural = [q for q in saved if q.source != "generated"]
        generated = [q for q in saved if q.source == "generated"]
        if not state.get("generated"):
            t = time.monotonic()
            deadline = time.monotonic() + budget_s * 0.6
            rng = random.Random(self.seed)
            chunks = [(r[0], r[1], texts[r[0]]) for r in outline if len(r[5].split()) >= 20]
            rng.shuffle(chunks)
            chunks = chunks[: self.sample] if self.sample else chunks
            from searchlm.generate.registry import get_generator

            self.say("Loading the language model to write queries for a sample of passages")
            generator = get_generator(None, _device(self.settings))

            def save(done):
                write_json_atomic(path, [q.to_json() for q in structural + done])

            generated = pq.generate_queries(generator, chunks, deadline, self.progress, generated, save)
            for q in generated:
                q.held_out = pq.held_out(q.doc_id, HELD_OUT)
            save(generated)
            state["generated"] = True  # the budget for it is spent (a re-run does not generate again)
            self._save()
            self._timed("generate", t)
        queries = structural + generated
        if not state.get("mined"):
            t = time.monotonic()
            self.say(f"Checking {len(queries):,} pseudo-queries against the current search")
            with Searcher(self.settings) as searcher:
                pq.mine(searcher, [q for q in queries if q.text and not q.held_out], self.progress)
            write_json_atomic(path, [q.to_json() for q in queries])
            state["mined"] = True
            self._save()
            self._timed("mine", t)
        return queries

    def _examples(self, train, texts) -> list[tuple[str, str, str, float]]:
        out = []
        for q in train:
            positive = q.passage or texts[q.chunk_id]
            for cid, score in q.negatives:
                if cid in texts:
                    out.append((q.text, positive, texts[cid], float(q.score - score)))
        return out

    def _export(self, model_dir: Path, target: Path) -> None:
        import warnings

        from sentence_transformers import SentenceTransformer

        from searchlm.embed.onnx import export_onnx

        model = SentenceTransformer(str(model_dir), device="cpu")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(model, f"{self.manifest.model} adapted", target)

    def _decide(self, report: AdaptReport, queries, candidate: Path) -> AdaptReport:
        """Tune the fusion weight on half the held-out queries; keep the candidate if it beats the old index on
        the other half by MARGIN."""
        from searchlm.adapt import stage
        from searchlm.search.searcher import DEFAULT_DENSE_WEIGHT, Searcher

        t = time.monotonic()
        # Judged on generated queries only: on CISI, after 56 steps, titles' MRR rose 0.847 -> 0.942 (dense) while
        # the judged nDCG@10 fell 0.417 -> 0.376; a title is its passage's own words and flatters an encoder
        # trained on titles. A negative margin turns the gate off (tests, benchmarks).
        held = [q for q in queries if q.held_out and q.text and q.source == "generated"]
        if len(held) < 2 * MIN_GATE and self.margin < 0:
            held = [q for q in queries if q.held_out and q.text and q.source in GATE_SOURCES] or \
                [q for q in queries if q.held_out and q.text]
        elif len(held) < 2 * MIN_GATE:
            return self._give_up(report, f"only {len(held)} held-out generated queries to judge the adapted "
                                         f"encoder by (at least {2 * MIN_GATE} are needed: give adapt more minutes or "
                                         "a GPU); the index is unchanged")
        tune = [q for q in held if (q.doc_id * 40503) % 2 == 0]
        gate = [q for q in held if (q.doc_id * 40503) % 2 == 1]
        if not tune or not gate:
            tune = gate = held
        if not gate:
            shutil.rmtree(self.work, ignore_errors=True)
            return self._give_up(report, "no held-out pseudo-queries to judge the adapted encoder by")
        old_weight = self.manifest.dense_weight if self.manifest.dense_weight is not None else DEFAULT_DENSE_WEIGHT
        # The fusion weight is tuned on generated queries only: a title or a sentence is in its passage word for
        # word, so they favour keywords (on CISI they chose 0.5 and cost 0.016 nDCG@10 that 0.6 did not).
        tune_generated = [q for q in tune if q.source == "generated"]
        self.say(f"Judging on {len(held):,} held-out pseudo-queries")
        with Searcher(self.settings) as old, Searcher(self.settings.with_(home=candidate.parent)) as new:
            weight, by_weight = old_weight, {}
            if len(tune_generated) >= MIN_TUNE:
                by_weight = {w: mrr(new, tune_generated, w) for w in sorted({*WEIGHTS, old_weight})}
                best = max(by_weight.items(), key=lambda kv: (round(kv[1], 4), -abs(kv[0] - old_weight)))[0]
                if by_weight[best] >= by_weight[old_weight] + MARGIN / 2:  # move only on a real gain
                    weight = best
            ranks_old, ranks_new = reciprocal_ranks(old, gate, old_weight), reciprocal_ranks(new, gate, weight)
            gate_old, gate_new = _mean(ranks_old), _mean(ranks_new)
            dense_old, dense_new = mrr(old, gate, 1.0), mrr(new, gate, 1.0)
        gain, noise = paired_gain(ranks_old, ranks_new)
        report.dense_weight = weight
        report.gate = {"queries": len(gate), "tune_queries": len(tune_generated) if by_weight else 0, "old_mrr": round(gate_old, 4),
                       "new_mrr": round(gate_new, 4), "old_dense_mrr": round(dense_old, 4),
                       "new_dense_mrr": round(dense_new, 4), "margin": self.margin,
                       "standard_error": round(noise, 4),
                       "mrr_by_weight": {f"{w:.1f}": round(v, 4) for w, v in by_weight.items()}}
        self._timed("gate", t)
        # Kept on a gain above the margin and above noise: two standard errors of the per-query differences
        # (a one-sided ~97.5% paired test), so that a few lucky queries out of a few dozen keep no encoder.
        need = max(self.margin, SIGNIFICANCE * noise) if self.margin >= 0 else self.margin
        if gain < need:
            shutil.rmtree(self.work, ignore_errors=True)
            return self._give_up(report, f"the adapted encoder did not beat the current one on {len(gate)} held-out "
                                         f"pseudo-queries (MRR {gate_new:.3f} vs {gate_old:.3f}, needs +{need:.3f}); "
                                         "the index is unchanged")
        manifest = Manifest.load(candidate)
        manifest.adapted["dense_weight"] = weight
        manifest.adapted["gate"] = report.gate
        from searchlm.indexing.database import Database

        store = Database(candidate / DB_FILE, existing=True)
        try:
            manifest.save(candidate, store)
        finally:
            store.close()
        stage.swap_in(self.index_dir)
        shutil.rmtree(self.work, ignore_errors=True)
        report.kept = True
        report.model = str(self.index_dir / MODEL_DIR)
        report.reason = (f"kept: MRR on {len(gate)} held-out pseudo-queries {gate_old:.3f} -> {gate_new:.3f}, "
                         f"fusion weight {weight}")
        return report

    def _give_up(self, report: AdaptReport, reason: str) -> AdaptReport:
        shutil.rmtree(self.work, ignore_errors=True)
        report.kept = False
        report.reason = reason
        return report

    # -- undo ----------------------------------------------------------------------------------------------
    def undo(self) -> AdaptReport:
        from searchlm.adapt import stage
        from searchlm.indexing.check import restore_encoder
        from searchlm.indexing.database import Database

        report = AdaptReport(self.settings.name, seconds=self.times)
        if not self.manifest.adapted:
            if self.work.exists():
                shutil.rmtree(self.work)  # an unfinished adaptation: nothing of it reached the index
            raise InputError(f"index '{self.settings.name}' is not adapted (it encodes with "
                             f"'{self.manifest.model}'): nothing to undo")
        state = self._state("undo")
        candidate = stage.candidate_dir(self.index_dir)
        t = time.monotonic()
        if "encode_started" not in state:
            store = Database(self.index_dir / DB_FILE, existing=True)
            try:
                stage.make_candidate(self.index_dir, store, MODEL_DIR)
            finally:
                store.close()
            packaged = Manifest.load(candidate)
            packaged.adapted = {}  # so that the encoder put back is the packaged model's
            restore_encoder(candidate, packaged)
            state["encode_started"] = True
            self._save()
        if not state.get("encoded"):
            self.say(f"Re-encoding with '{self.manifest.model}'")
            stage.reencode(candidate, self._embedder(self.manifest.model), self.progress)
            manifest = Manifest.load(self.index_dir)
            manifest.adapted = {}
            stage.finish_candidate(candidate, manifest)
            state["encoded"] = True
            self._save()
        stage.swap_in(self.index_dir)
        shutil.rmtree(self.work, ignore_errors=True)
        self._timed("encode", t)
        report.kept = False
        report.model = self.manifest.model
        report.reason = f"restored '{self.manifest.model}'"
        return report


def mrr(searcher, queries, weight: float, k: int = 10) -> float:
    """Mean reciprocal rank of each query's own document in the top `k` documents."""
    return _mean(reciprocal_ranks(searcher, queries, weight, k))


def reciprocal_ranks(searcher, queries, weight: float, k: int = 10) -> list[float]:
    """Each query's reciprocal rank of its own document in the top `k` documents (0 when not there)."""
    from searchlm.search.searcher import SearchOptions

    options = SearchOptions(k=k, group_by_document=True, dense_weight=weight, correct=False,
                            mode="dense" if weight >= 1.0 else "hybrid")
    out = []
    for start in range(0, len(queries), 32):
        part = queries[start : start + 32]
        for q, hits in zip(part, searcher.search_many([q.text for q in part], options)):
            out.append(next((1.0 / rank for rank, hit in enumerate(hits, start=1) if hit.doc_id == q.doc_id), 0.0))
    return out


def paired_gain(old: list[float], new: list[float]) -> tuple[float, float]:
    """The mean per-query gain of `new` over `old` and its standard error."""
    diffs = [b - a for a, b in zip(old, new)]
    n = len(diffs)
    if n < 2:
        return (diffs[0] if diffs else 0.0), 0.0
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return mean, (variance / n) ** 0.5


def _mean(values: list[float]) -> float:
    return sum(values) / max(1, len(values))


def _device(settings: Settings) -> str:
    from searchlm.devices import pick_device

    return pick_device(settings.device)
