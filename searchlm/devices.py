"""Where torch models run: the Hugging Face environment, the device, bf16 and autocast.

One place for what every torch backend does on loading (the sentence-transformers encoder, the cross-encoder
and LM rerankers, the generators). Nothing here imports torch until a function needs it, so `searchlm --help`
and a search without torch stay fast.
"""

from __future__ import annotations

import contextlib
import os

from searchlm.errors import ModelError


def hugging_face_defaults(offline: bool = True) -> None:
    """Quiet defaults for loading a Hugging Face model: no tokenizer thread pool, progress bars or warnings, and
    (with `offline`) no network: the packaged models are local. A value already in the environment wins."""
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def pick_device(device: str = "auto") -> str:
    """"auto" is CUDA when torch sees a GPU, else the CPU; "cuda" without a GPU is a ModelError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelError("device 'cuda' asked for but torch sees no GPU", "use device='cpu'", "use --device cpu")
    return device


def gpu_driver_present() -> bool:
    """Whether an NVIDIA driver is loaded, told without importing torch: where it is, "auto" may mean CUDA."""
    return os.path.exists("/proc/driver/nvidia/version")


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 / AMX); elsewhere autocast would be slower.
    SEARCHLM_BF16=0 turns bf16 off."""
    if os.environ.get("SEARCHLM_BF16", "").lower() in ("0", "false", "no"):
        return False
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def autocast(device: str, cpu_bf16: bool = False, cuda_fp16: bool = True):
    """The autocast context for inference on `device`: fp16 on CUDA (unless `cuda_fp16` is False), bf16 on the
    CPU when `cpu_bf16` (see `cpu_has_bf16`), none otherwise."""
    import torch

    if device == "cuda" and cuda_fp16:
        return torch.autocast("cuda", dtype=torch.float16)
    if device == "cpu" and cpu_bf16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
