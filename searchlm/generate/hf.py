"""Any Hugging Face causal LM as a `Generator`: a hub name, a local folder, or a GGUF file (dequantized on load).

Greedy by default. Tokens are streamed through a `transformers` streamer that decodes the whole answer so far
and passes on only what is new and certain: text that ends in half a UTF-8 character, or that could still turn
into a stop string, waits for the next token.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from searchlm.cache import cache_home
from searchlm.devices import cpu_has_bf16, hugging_face_defaults, pick_device
from searchlm.errors import ModelError
from searchlm.generate.base import Generator, OnToken

log = logging.getLogger(__name__)

# Where the context length hides in the configs of the common families.
_CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length", "max_sequence_length")


class TransformersGenerator(Generator):
    def __init__(self, model, tokenizer, name: str, device: str = "cpu", bf16: bool = False):
        """`bf16`: whether the weights were cast to bfloat16 (where the hardware computes it natively)."""
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.bf16 = bf16
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        self.context_length = context_length_of(model.config, tokenizer)
        # Prompts are fitted to the window here; the tokenizer need not warn about long texts we only count.
        tokenizer.model_max_length = 1 << 30
        self.last_first_token_seconds: float | None = None  # prompt in, first text out, for benchmarks

    # -- tokens -------------------------------------------------------------------------------------------
    def _ids(self, text: str, special: bool = False) -> list[int]:
        return self.tokenizer(text, add_special_tokens=special)["input_ids"]

    def count_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        try:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        except (NotImplementedError, TypeError, ValueError):  # slow tokenizers have no offsets
            ids = self._ids(text)
            return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])
        if len(enc["input_ids"]) <= max_tokens:
            return text
        return text[: enc["offset_mapping"][max_tokens - 1][1]]

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        if not self.chat:
            return super().render_chat(messages)
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    # -- generation ---------------------------------------------------------------------------------------
    def generate(
        self, prompt: str, max_tokens: int, temperature: float = 0.0, on_token: OnToken | None = None,
        stop: tuple[str, ...] = (),
    ) -> str:
        import torch

        # A rendered chat prompt already holds its special tokens as text; a plain prompt gets the model's own.
        ids = self._ids(prompt, special=not self.chat)
        ids, max_new = self.fit_ids(ids, max_tokens)
        if max_new <= 0:
            return ""
        stream = TokenStream(self.tokenizer, on_token, tuple(s for s in stop if s))
        input_ids = torch.tensor([ids], device=self.device)
        eos = self.model.generation_config.eos_token_id
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = eos[0] if isinstance(eos, list) else eos
        kwargs = dict(
            max_new_tokens=max_new, streamer=stream, stopping_criteria=[stream.criterion()],
            attention_mask=torch.ones_like(input_ids), pad_token_id=pad,
        )
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=float(temperature), top_p=0.95, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            self.model.generate(input_ids, **kwargs)
        stream.finish()
        self.last_first_token_seconds = stream.first_token_seconds
        return stream.text


def context_length_of(config, tokenizer=None) -> int:
    """Positions the model can attend to, prompt and answer together."""
    for key in _CONTEXT_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return 1024


class TokenStream:
    """A `transformers` streamer (put/end) that hands new text to `on_token` and watches for stop strings. Any
    tokenizer with `decode(ids, skip_special_tokens=True)` will do (the ONNX Runtime backend shares it)."""

    def __init__(self, tokenizer, on_token: OnToken | None, stops: tuple[str, ...]):
        self.tokenizer = tokenizer
        self.on_token = on_token
        self.stops = stops
        self.ids: list[int] = []
        self.text = ""  # what has been passed on
        self.pending = ""  # decoded but held back
        self.stopped = False
        self.prompt_seen = False
        self.started = time.perf_counter()
        self.first_token_seconds: float | None = None

    def criterion(self):
        from transformers import StoppingCriteria

        stream = self

        class _StopWhenDone(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                import torch

                return torch.full((input_ids.shape[0],), stream.stopped, dtype=torch.bool, device=input_ids.device)

        return _StopWhenDone()

    def put(self, value) -> None:
        if not self.prompt_seen:  # `generate` first hands over the prompt
            self.prompt_seen = True
            return
        self.push(int(i) for i in value.reshape(-1).tolist())

    def push(self, ids) -> None:
        """New token ids of the answer (a backend without `transformers`' streamer calls this directly)."""
        if self.stopped:
            return
        self.ids.extend(ids)
        if _looping(self.ids):  # greedy decoding of a small model caught in a loop: what follows is more of it
            self.stopped = True
            return
        decoded = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if decoded.endswith("\ufffd"):  # half a character: wait for the rest
            return
        # A stop string counts only after the text has begun: a base model often opens its answer on a new line
        # ("Answer:\n Paris"), which a "\n" stop would otherwise cut to nothing (Gemma 3 270M did).
        begun = len(decoded) - len(decoded.lstrip())
        cut = min((i for i in (decoded.find(s, begun) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            decoded = decoded[:cut]
            self.stopped = True
        safe = len(decoded)
        if not self.stopped:  # hold back an ending that may grow into a stop string
            for s in self.stops:
                for n in range(min(len(s) - 1, len(decoded)), 0, -1):
                    if decoded.endswith(s[:n]):
                        safe = min(safe, len(decoded) - n)
                        break
        self._emit(decoded[:safe])
        self.pending = decoded[safe:]

    def _emit(self, decoded: str) -> None:
        if not decoded.startswith(self.text):
            # A tokenizer may re-spell earlier text once more tokens arrive; keep what was already shown.
            new = decoded[len(self.text):] if len(decoded) > len(self.text) else ""
        else:
            new = decoded[len(self.text):]
        if not new:
            return
        if self.first_token_seconds is None:
            self.first_token_seconds = time.perf_counter() - self.started
        self.text += new
        if self.on_token is not None:
            self.on_token(new)

    def end(self) -> None:
        pass

    def finish(self) -> None:
        """Pass on what was held back for a stop string that never came."""
        if not self.stopped and self.pending:
            self._emit(self.text + self.pending)
            self.pending = ""


LOOP_NGRAM = 6
LOOP_REPEATS = 3


def _looping(ids: list[int]) -> bool:
    """True when the last LOOP_NGRAM tokens have already come LOOP_REPEATS times before in this answer."""
    n = LOOP_NGRAM
    if len(ids) < n * (LOOP_REPEATS + 1):
        return False
    tail = ids[-n:]
    seen = sum(ids[i : i + n] == tail for i in range(len(ids) - n))
    return seen >= LOOP_REPEATS


def load_transformers(source: str, gguf_file: str | None, name: str, device: str = "auto") -> TransformersGenerator:
    """Load a causal LM and its tokenizer from a hub name or folder (`gguf_file` inside it, if given)."""
    model, tokenizer, device, bf16 = load_causal_lm(source, gguf_file, name, device)
    return TransformersGenerator(model, tokenizer, name=name, device=device, bf16=bf16)


def load_causal_lm(
    source: str, gguf_file: str | None, name: str, device: str = "auto", role: str = "generator",
    fixes: tuple[str, str] | None = None,
):
    """(model, tokenizer, device, bf16): a causal LM in eval mode on `device`, in bf16 where the hardware
    computes it natively. The one loader of the generators and the LM reranker. A GGUF is dequantized once and
    kept in the cache (see below). `role` and `fixes` (library and CLI wording) name what failed to load."""
    # Offline unless the user sets HF_HUB_OFFLINE=0: a hub name then loads from the local HF cache only, and a
    # name that is not there fails at once instead of retrying an unreachable hub for ~15 s.
    hugging_face_defaults()
    # OpenMP threads that spin while they wait for work cost a 135M model 10x per token when the cores are
    # shared (measured: 1.2 s against 0.13 s a token at load 9 on 2 cores); passive waiting costs ~nothing when
    # they are not. Takes effect only if torch is not imported yet, as in `searchlm ask`.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ModelError(f"the {role} needs torch and transformers", "pip install 'searchlm[generate]'") from exc
    hf_logging.disable_progress_bar()
    device = pick_device(device)
    converted = converted_folder(source, gguf_file) if gguf_file else None
    if converted is not None and (converted / "model.safetensors").is_file():
        source, gguf_file = str(converted), None
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink) if gguf_file else contextlib.nullcontext():
            # (the GGUF reader draws its own progress bar on stderr)
            tokenizer = AutoTokenizer.from_pretrained(source, **extra)
            model = AutoModelForCausalLM.from_pretrained(source, **extra)
    except ImportError as exc:  # GGUF needs `gguf` (and `accelerate`)
        raise ModelError(f"cannot load {role} '{name}': {exc}", "pip install 'searchlm[generate]'") from exc
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        fix, cli_fix = fixes or (
            "pass a local model folder or a .gguf file as the generator, or use the default 'smollm2'",
            "pass a local model folder or a .gguf file with --generator, or use the default: --generator smollm2",
        )
        hint = _download_hint(source)
        raise ModelError(f"cannot load {role} '{name}' ({type(exc).__name__}: {first})", fix + hint, cli_fix + hint) from exc
    model.eval()
    if gguf_file and converted is not None:
        _save_converted(model, tokenizer, converted)
    # bf16 weights where the hardware computes bf16 natively: on an AVX512-BF16 CPU the default model answered
    # the same (xquad, 60 questions: 50 % vs 48 % contain the gold answer) in half the time (median 1.8 s vs
    # 3.3 s; first token 0.24 s vs 0.70 s). Autocast over fp32 weights was slower per token than fp32 alone
    # (and for the reranker: autocast re-casts every weight on every call).
    bf16 = cpu_has_bf16() if device == "cpu" else torch.cuda.is_bf16_supported()
    model.to(device=device, dtype=torch.bfloat16 if bf16 else torch.float32)
    return model, tokenizer, device, bf16


# -- GGUF, converted once -----------------------------------------------------------------------------------
# Reading a GGUF costs ~17 s on two cores (transformers parses its metadata three times: tokenizer, weights
# map, weights) against 0.3 s for the same weights as safetensors. So the first load writes the dequantized
# model, in bf16 (260 MB for SmolLM2-135M; the Q4 weights lose nothing that matters to that rounding), to
# $SEARCHLM_CACHE/generators (default ~/.cache/searchlm) and later loads read that.
def converted_folder(source: str, gguf_file: str) -> Path | None:
    path = Path(source) / gguf_file
    try:
        st = path.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_home() / "generators" / f"{path.stem}-{key}"


def _save_converted(model, tokenizer, target: Path) -> None:
    """Cache a GGUF-loaded generator as a plain folder; a failure only means the next load reads the GGUF again."""
    try:
        save_plain_folder(model, tokenizer, target)
    except OSError as exc:  # another process got there first, or the cache is not writable: load from GGUF
        log.info("could not cache the converted generator in %s: %s", target, exc)


def save_plain_folder(model, tokenizer, target: Path) -> None:
    """Write the model (bf16 safetensors) and tokenizer as a plain Hugging Face folder, atomically (temp folder,
    then rename). Works for GGUF-loaded models, whose `save_pretrained` refuses."""
    import torch
    from safetensors.torch import save_model

    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.architectures = [type(model).__name__]  # a GGUF-loaded config names none; exporters need it
        config.dtype = torch.bfloat16
        config.save_pretrained(tmp)
        model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        original = next(model.parameters()).dtype
        save_model(model.to(torch.bfloat16), str(tmp / "model.safetensors"))
        model.to(original)
        os.replace(tmp, target)
        tmp = None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _download_hint(source: str) -> str:
    """For a hub name tried offline: how to allow the download."""
    if Path(source).exists() or os.environ.get("HF_HUB_OFFLINE", "").lower() not in ("1", "true", "yes", "on"):
        return ""
    return " (or allow hub downloads with HF_HUB_OFFLINE=0)"
