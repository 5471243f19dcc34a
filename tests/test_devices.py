"""`searchlm.devices`: what every torch backend does on loading (environment, device, bf16, autocast)."""

from __future__ import annotations

import contextlib
import os

import pytest

from searchlm.devices import autocast, cpu_has_bf16, hugging_face_defaults, pick_device
from searchlm.errors import ModelError


def test_hugging_face_defaults_keep_what_the_user_set(monkeypatch):
    for key in ("HF_HUB_OFFLINE", "TOKENIZERS_PARALLELISM", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "info")
    hugging_face_defaults(offline=False)  # a generator may download from the hub
    assert "HF_HUB_OFFLINE" not in os.environ and os.environ["TOKENIZERS_PARALLELISM"] == "false"
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "info"
    hugging_face_defaults()
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_devices_and_autocast_on_the_cpu(monkeypatch):
    import torch

    assert pick_device("cpu") == "cpu"
    assert pick_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="use device='cpu'"):
            pick_device("cuda")
    monkeypatch.setenv("SEARCHLM_BF16", "0")
    assert cpu_has_bf16() is False
    assert isinstance(autocast("cpu"), contextlib.nullcontext)
    assert isinstance(autocast("cuda", cuda_fp16=False), contextlib.nullcontext)
    bf16 = autocast("cpu", cpu_bf16=True)
    assert isinstance(bf16, torch.autocast) and bf16.fast_dtype == torch.bfloat16
