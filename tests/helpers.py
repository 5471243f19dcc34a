"""What several test modules share: a tiny random GPT-2 (the real one cannot be downloaded here), a generator
whose output is scripted, a plugin registered for a block, a hit maker, a tiny BEIR dataset and the questions of
sample_corpus/QUERIES.md, the planted documents and file damage of the integrity tests and benchmarks/faults.py.
Fixtures live in conftest.py."""

from __future__ import annotations

import contextlib
import os

import io
import json
import random
import zipfile
import re
from pathlib import Path

from searchlm.generate.base import Generator
from searchlm.records import Hit

TEXTS = [
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "Bees make honey in hives and the beekeeper harvests it in late summer.",
    "The Sicilian Defence is a sharp chess opening for Black.",
    "Coral reefs bleach when the water gets too warm for their algae.",
    "Question: what is it? Answer: a passage, with numbers [1] and [2].",
]


def build_tiny_gpt2(folder: Path, n_positions: int = 1024) -> Path:
    """A 2-layer random GPT-2 with a byte-level BPE tokenizer trained here, saved as a Hugging Face folder."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(TEXTS * 20, vocab_size=400, special_tokens=["<|endoftext|>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    tok.model_max_length = n_positions
    tok.save_pretrained(folder)
    config = GPT2Config(
        vocab_size=len(tok), n_positions=n_positions, n_embd=64, n_layer=2, n_head=2,
        bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@contextlib.contextmanager
def registered(plugin, name: str):
    """`plugin` (an object with `searchlm.hookimpl` methods) registered with searchlm's plugin manager for the
    `with` block, as an installed package's would be, and removed after."""
    from searchlm.plugins import pm

    pm.register(plugin, name=name)
    try:
        yield plugin
    finally:
        pm.unregister(name=name)


def hit(n: int, text: str, path: str = "doc.md") -> Hit:
    return Hit(rank=n, score=1.0, path=path, chunk_id=n, doc_id=n, title="", heading=f"Part {n}", start_line=n,
               end_line=n, page=None, text=text)


class ScriptedGenerator(Generator):
    """A real generator's tokenizer and window (prompts are built for real) whose output is scripted: the
    pieces stream one by one, as a model's tokens do, so what is shown can be checked exactly."""

    def __init__(self, base: Generator, pieces: list[str]):
        self.base, self.pieces = base, pieces
        self.name, self.context_length, self.chat = base.name, base.context_length, base.chat

    def count_tokens(self, text: str) -> int:
        return self.base.count_tokens(text)

    def truncate(self, text: str, max_tokens: int) -> str:
        return self.base.truncate(text, max_tokens)

    def generate(self, prompt, max_tokens, temperature=0.0, on_token=None, stop=()) -> str:
        for piece in self.pieces:
            if on_token is not None:
                on_token(piece)
        return "".join(self.pieces)


# -- a tiny BEIR dataset ---------------------------------------------------------------------------------
DOCS = {
    "volc": ("Volcanoes", "Magma rises through the crust and erupts as lava from volcanic vents."),
    "bees": ("Beekeeping", "Honey bees live in hives; the beekeeper harvests honey and wax in late summer."),
    "tea": ("Tea processing", "Green tea leaves are steamed, rolled and dried; black tea is fully oxidised."),
    "chess": ("Chess openings", "The Sicilian Defence answers 1.e4 with c5 and leads to sharp positions."),
    "bike": ("History of the bicycle", "The safety bicycle with a chain drive replaced the penny-farthing."),
    "reef": ("Coral reefs", "Reef-building corals host algae; warm water causes coral bleaching."),
}
QUERIES = {
    "q1": "how does lava erupt from a volcano",
    "q2": "harvesting honey from bee hives",
    "q3": "why do corals bleach in warm water",
    "q4": "unjudged query about tea",
}
QRELS = [("q1", "volc", 1), ("q2", "bees", 2), ("q3", "reef", 1), ("q3", "tea", 0)]


def write_beir(root: Path, docs=DOCS, queries=QUERIES, qrels=QRELS, split="test") -> Path:
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w", encoding="utf-8") as f:
        for i, (title, text) in docs.items():
            f.write(json.dumps({"_id": i, "title": title, "text": text, "metadata": {}}) + "\n")
    with open(root / "queries.jsonl", "w", encoding="utf-8") as f:
        for i, text in queries.items():
            f.write(json.dumps({"_id": i, "text": text, "metadata": {}}) + "\n")
    with open(root / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for q, d, s in qrels:
            f.write(f"{q}\t{d}\t{s}\n")
    return root


def sample_queries() -> list[tuple[str, str]]:
    """(question, expected document) rows of sample_corpus/QUERIES.md."""
    rows = []
    queries = Path(__file__).resolve().parent.parent / "sample_corpus" / "QUERIES.md"
    for line in queries.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*(.+?)\s*\|\s*`(.+?)`\s*\|\s*$", line)
        if m:
            rows.append((m.group(1), m.group(2)))
    return rows


# -- a DOCX zip bomb --------------------------------------------------------------------------------------
def docx_bomb(xml_mb: float) -> bytes:
    """A valid DOCX whose document.xml unzips to `xml_mb` MB of paragraphs (a few hundred KB on disk)."""
    import docx

    seed = io.BytesIO()
    d = docx.Document()
    d.add_paragraph("seed")
    d.save(seed)
    src = zipfile.ZipFile(io.BytesIO(seed.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "word/document.xml":
                para = b"<w:p><w:r><w:t>lorem ipsum dolor</w:t></w:r></w:p>"
                data = data.replace(b"<w:body>", b"<w:body>" + para * int(xml_mb * 2**20 / len(para)))
            z.writestr(info.filename, data)
    return out.getvalue()


def group_members(pgid: int) -> list[int]:
    """Live processes in process group `pgid` (from /proc; zombies count as gone)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != b"Z":
            members.append(int(entry))
    return members


def worker_running(pgid: int) -> bool:
    """Whether the extraction worker (a multiprocessing spawn child) runs in process group `pgid`."""
    for pid in group_members(pgid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"spawn_main" in f.read():
                    return True
        except OSError:
            continue
    return False


# -- a Milvus server -------------------------------------------------------------------------------------
class MilvusServer:
    """Milvus Lite's own gRPC server (`python -m milvus_lite server`) in a subprocess on a free loopback port,
    its data in `data_dir`: what `--store http://127.0.0.1:PORT` talks to. `stop()` kills it (a lost server);
    `start()` runs it again on the same data and port."""

    def __init__(self, data_dir: Path, port: int | None = None):
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self, timeout: float = 90.0) -> "MilvusServer":
        import subprocess
        import sys
        import time

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
             "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.port):  # a connect attempt each 0.1 s until it listens: no fixed sleep
            if self.proc.poll() is not None:
                raise RuntimeError(f"milvus_lite server exited {self.proc.returncode}: {self.proc.stdout.read()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"milvus_lite server did not listen on {self.port} in {timeout:.0f} s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- planted documents and damaged files (tests/test_integrity.py, benchmarks/faults.py) -------------------------
PLANT_WORDS = ("river stone garden market window ladder engine harbor violin pepper orbit canvas lantern meadow "
               "compass thunder velvet quartz falcon ember glacier saffron timber voyage").split()
DAMAGES = ("truncate", "zero", "garble", "delete")


def planted(i: int) -> str:
    """A token that only document `i` holds: its keyword search has one right top hit."""
    return f"zqx{i:04d}plant"


def write_planted(folder: Path, i: int, variant: int = 0, words: int = 400) -> Path:
    """folder/doc{i:03d}.md: a title, `planted(i)` and `words` filler words drawn for (i, variant); another
    variant is another text (a changed file to re-index) with the same planted token."""
    rng = random.Random(i * 1000 + variant)
    body = " ".join(rng.choice(PLANT_WORDS) for _ in range(words))
    path = folder / f"doc{i:03d}.md"
    path.write_text(f"# Document {i}\n\n{planted(i)} {body} v{variant}\n", encoding="utf-8")
    return path


def planted_queries(n: int) -> list[tuple[str, str]]:
    """(query, the file name of its right top hit) for the first `n` planted documents."""
    return [(planted(i), f"doc{i:03d}.md") for i in range(n)]


def damage_file(path: Path, how: str, rng: random.Random | None = None) -> None:
    """One of DAMAGES: delete, truncate to half, zero every byte, or garble the middle (1/8 of the file, at least
    16 bytes, at most 16 KB, of random bytes; same size and no new name)."""
    size = path.stat().st_size
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        with open(path, "r+b") as f:
            f.truncate(size // 2)
    elif how == "zero":
        with open(path, "r+b") as f:
            f.write(b"\0" * size)
    elif how == "garble":
        n = min(max(16, min(16384, size // 8)), size)
        with open(path, "r+b") as f:
            f.seek(max(0, size // 2 - n // 2))
            f.write((rng or random.Random(0)).randbytes(n))
    else:
        raise ValueError(f"unknown damage {how!r} (one of {', '.join(DAMAGES)})")


# Five short documents in three folders: what the store tests index on every backend (test_stores, test_store_seams).
STORE_DOCS = {
    "notes/bees.md": "# Bees\n\nHoney bees perform a waggle dance to tell the hive where flowers are.\n",
    "notes/bread.txt": "Sourdough bread\n\nA sourdough starter is flour and water colonised by wild yeast.\n",
    "ml/attention.md": "# Attention\n\nSelf-attention lets every token weigh every other token in the sequence.\n",
    "ml/trees.md": "# Decision trees\n\nA decision tree splits the data on one feature at a time, greedily.\n",
    "misc/knots.md": "# Knots\n\nA bowline makes a fixed loop at the end of a line that does not slip.\n",
}
