"""GGUF generators on the CPU through ONNX Runtime GenAI: no torch or transformers when a question is answered.

Before its first token, the default SmolLM2 through transformers costs ~9 s of CPU on this project's 2-core
machine: torch ~3 s, transformers and its Llama modules ~5 s (they import torch.distributed, sympy, dynamo),
tokenizer and weights ~1 s. The same weights exported to ONNX load in ~1.6 s of CPU with nothing else to import,
and a token costs ~50 ms of CPU against ~120 ms. The answers are the same: the export is fp32, which is what the
transformers path computes on a CPU without native bf16 (greedy answers compared token for token in
tests/test_generate.py).

The export is onnxruntime-genai's own model builder, run once in a subprocess on the plain folder the GGUF was
converted to (generate/hf.py), into the cache beside it; a model the builder cannot export (an architecture it
does not know) is marked there and keeps loading through transformers.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from searchlm.errors import ModelError
from searchlm.generate.base import Generator, OnToken

log = logging.getLogger(__name__)

PRECISION = "fp32"
_FAILED = ".export-failed"  # in the converted folder: the builder could not export this model; do not retry


def available() -> bool:
    return importlib.util.find_spec("onnxruntime_genai") is not None


class OrtGenerator(Generator):
    """A model folder written by onnxruntime-genai's builder (genai_config.json, model.onnx, tokenizer.json)."""

    def __init__(self, folder: str | Path, name: str):
        import onnxruntime_genai as og
        from tokenizers import Tokenizer

        folder = Path(folder)
        self.folder = folder
        self.name = name
        self.device = "cpu"
        og_config = og.Config(str(folder))
        # The builder's config sets no thread count, and onnxruntime-genai then decodes on one thread: on 2 cores,
        # two threads write a 131-token prompt's 60-token answer in 2.6 s instead of 4.3 s.
        threads = max(1, min(os.cpu_count() or 1, 8))
        og_config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        self.model = og.Model(og_config)
        # `tokenizers` directly: offsets for `truncate`, and the same ids transformers' fast tokenizer gives.
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))["model"]
        self.context_length = int(config.get("context_length") or 2048)
        self.vocab_size = int(config.get("vocab_size") or 0)
        self._template = _chat_template(folder)
        self.chat = self._template is not None
        self.last_first_token_seconds: float | None = None

    # -- tokens -------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def truncate(self, text: str, max_tokens: int) -> str:
        if max_tokens <= 0:
            return ""
        enc = self.tokenizer.encode(text, add_special_tokens=False)
        if len(enc.ids) <= max_tokens:
            return text
        return text[: enc.offsets[max_tokens - 1][1]]

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        if self._template is None:
            return super().render_chat(messages)
        return self._template.render(messages=messages, add_generation_prompt=True)

    # -- generation ---------------------------------------------------------------------------------------
    def generate(
        self, prompt: str, max_tokens: int, temperature: float = 0.0, on_token: OnToken | None = None,
        stop: tuple[str, ...] = (),
    ) -> str:
        import onnxruntime_genai as og

        from searchlm.generate.hf import TokenStream

        ids = self.tokenizer.encode(prompt, add_special_tokens=not self.chat).ids
        ids, max_new = self.fit_ids(ids, max_tokens)
        if max_new <= 0:
            return ""
        params = og.GeneratorParams(self.model)
        search = {"max_length": len(ids) + max_new, "do_sample": temperature > 0}
        if temperature > 0:
            search.update(temperature=float(temperature), top_p=0.95, top_k=self.vocab_size or 50)
        params.set_search_options(**search)
        stream = TokenStream(self.tokenizer, on_token, tuple(s for s in stop if s))
        generator = og.Generator(self.model, params)
        generator.append_tokens(ids)
        while not generator.is_done() and not stream.stopped:
            generator.generate_next_token()
            stream.push(int(t) for t in generator.get_next_tokens())
        stream.finish()
        self.last_first_token_seconds = stream.first_token_seconds
        return stream.text


def _chat_template(folder: Path):
    """The folder's chat template, compiled as transformers compiles it (sandboxed Jinja, trimmed blocks)."""
    path = folder / "chat_template.jinja"
    if not path.is_file():
        return None
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    return env.from_string(path.read_text(encoding="utf-8"))


# -- export, once -----------------------------------------------------------------------------------------
def exported_folder(converted: Path) -> Path:
    """Where the ONNX export of the plain folder `converted` lives (named by the builder's version: its
    genai_config format follows the runtime's)."""
    import onnxruntime_genai as og

    return converted.with_name(f"{converted.name}-onnx{og.__version__}-{PRECISION}")


def export(converted: Path, target: Path) -> None:
    """Run onnxruntime-genai's model builder on the plain folder `converted` into `target`, atomically. A
    failure raises ModelError and is remembered in `converted` (the next load goes to transformers at once)."""
    tmp = Path(tempfile.mkdtemp(prefix=".exporting-", dir=target.parent))
    try:
        command = [
            sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(converted), "-o", str(tmp / "model"),
            "-p", PRECISION, "-e", "cpu", "-c", str(tmp / "cache"),
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        if done.returncode != 0 or not (tmp / "model" / "genai_config.json").is_file():
            lines = [line for line in (done.stderr or done.stdout or "").strip().splitlines() if line.strip()]
            reason = lines[-1][:200] if lines else f"exit status {done.returncode}"
            try:
                (converted / _FAILED).write_text(reason + "\n", encoding="utf-8")
            except OSError:
                pass
            raise ModelError(f"could not export '{converted.name}' to ONNX ({reason})")
        os.replace(tmp / "model", target)
    except OSError as exc:
        if not (target / "genai_config.json").is_file():  # another process may have got there first
            raise ModelError(f"could not write the ONNX export to {target}: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_ort(source: str, gguf_file: str, name: str, device: str = "auto") -> OrtGenerator | None:
    """The GGUF `source`/`gguf_file` as an OrtGenerator, exporting it first if needed; None where this backend
    does not apply (onnxruntime-genai missing, a GPU asked for or present, a model the builder cannot export),
    so that the caller loads it through transformers."""
    from searchlm.devices import gpu_driver_present
    from searchlm.generate.hf import converted_folder, load_causal_lm

    if not available() or device not in ("auto", "cpu") or (device == "auto" and gpu_driver_present()):
        return None
    converted = converted_folder(source, gguf_file)
    if converted is None or (converted / _FAILED).is_file():
        return None
    target = exported_folder(converted)
    if not (target / "genai_config.json").is_file():
        if not (converted / "model.safetensors").is_file():
            load_causal_lm(source, gguf_file, name, "cpu")  # converts the GGUF and caches the plain folder
        _name_architecture(converted)
        try:
            export(converted, target)
        except ModelError as exc:
            log.warning("%s; loading '%s' through transformers", exc, name)
            return None
    try:
        return OrtGenerator(target, name)
    except Exception as exc:  # a runtime that cannot read this export (e.g. another onnxruntime): transformers
        log.warning("could not load the ONNX export of '%s' (%s); loading it through transformers", name, exc)
        return None


def _name_architecture(converted: Path) -> None:
    """Folders converted before the config named its architecture (the builder needs it): name it."""
    path = converted / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if config.get("architectures"):
        return
    kind = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
            "phi3": "Phi3ForCausalLM", "gemma": "GemmaForCausalLM"}.get(config.get("model_type", ""))
    if kind is None:
        return
    config["architectures"] = [kind]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(config, indent=2), encoding="utf-8")
    os.replace(tmp, path)
