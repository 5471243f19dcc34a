"""The few Milvus server calls a search makes, over gRPC directly: what makes a cold search against a server as
quick as one against FAISS.

`import pymilvus` costs more than the rest of a cold `searchlm search` together (1.2-1.8 s: it imports pandas,
its ORM and its async client), and its first search imports scipy to see whether the query is a scipy matrix.
A search needs three RPCs: DescribeCollection (the collection's properties, checked before use), Query
(`count(*)`) and Search. `Reader` sends them with grpc and the message classes pymilvus generated from Milvus's
protos, loaded on their own (their modules import only protobuf and each other), not through pymilvus's package:
0.3 s instead of 1.5 s. Everything else (writing, loading a collection, a server with TLS or credentials) stays
with pymilvus's `MilvusClient`; whenever the reader gets an answer it does not expect, it raises `Unexpected` and
the store carries on with `MilvusClient`, which does the same call its own way.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import socket
import sys
import types
from pathlib import Path

import numpy as np

_PACKAGE = "searchlm_milvus_proto"  # where pymilvus's generated modules are loaded, apart from pymilvus
_PLAIN = re.compile(r"^(?:http|tcp|grpc)://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(\d+)/?$")
_SERVICE = "/milvus.proto.milvus.MilvusService/"
_FLOAT_VECTOR, _VARCHAR = 101, 21  # common.PlaceholderType


class Unexpected(Exception):
    """An answer the reader does not handle (an error status, another server version): use MilvusClient."""


class Unreachable(Exception):
    """The server does not answer."""


def quiet_grpc() -> None:
    """Keep gRPC's C core from writing its own log lines to stderr, where a command's first output must be
    searchlm's one line: a Milvus Lite server that sends GOAWAY ("ENHANCE_YOUR_CALM ... too_many_pings") gets an
    ERROR-level line, so "ERROR" is not enough. The core reads GRPC_VERBOSITY once, when grpc is first imported;
    call this before every import of grpc or pymilvus. A value the user set is kept (e.g. DEBUG to see them)."""
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")


def plain_address(uri: str) -> str | None:
    """'host:port' for a server URI the reader can use (no TLS, no credentials), else None."""
    m = _PLAIN.match(uri)
    return f"{m.group(1)}:{m.group(2)}" if m else None


def _protos():
    if _PACKAGE + ".milvus_pb2" not in sys.modules:
        spec = importlib.util.find_spec("pymilvus")  # finds the package without running its __init__
        if spec is None or not spec.submodule_search_locations:
            raise Unexpected("pymilvus is not installed")
        package = types.ModuleType(_PACKAGE)
        package.__path__ = [str(Path(list(spec.submodule_search_locations)[0]) / "grpc_gen")]
        sys.modules.setdefault(_PACKAGE, package)
    try:
        return (importlib.import_module(_PACKAGE + ".milvus_pb2"), importlib.import_module(_PACKAGE + ".common_pb2"))
    except Exception as exc:  # a pymilvus whose generated modules moved or changed
        raise Unexpected(str(exc)) from None


def _knock(address: str, timeout: float) -> None:
    """Unreachable at once when nothing listens at `address`: gRPC would wait out its whole connect timeout (~5 s)
    before saying a stopped server cannot be reached."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise Unreachable(exc.strerror or type(exc).__name__) from None


class Reader:
    """Read-only calls to the Milvus server at `address` ('host:port')."""

    def __init__(self, address: str, timeout: float):
        quiet_grpc()
        import grpc

        self._grpc = grpc
        self.timeout = timeout
        self.milvus, self.common = _protos()
        _knock(address, timeout)
        self.channel = grpc.insecure_channel(address)
        try:
            grpc.channel_ready_future(self.channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            self.channel.close()
            raise Unreachable(f"no answer in {timeout:.0f} s") from None

    def _call(self, method: str, request, reply_class):
        call = self.channel.unary_unary(_SERVICE + method, request_serializer=type(request).SerializeToString,
                                        response_deserializer=reply_class.FromString)
        try:
            reply = call(request, timeout=self.timeout)
        except self._grpc.RpcError as exc:
            if exc.code() in (self._grpc.StatusCode.UNAVAILABLE, self._grpc.StatusCode.DEADLINE_EXCEEDED):
                raise Unreachable(exc.details() or exc.code().name) from None
            raise Unexpected(exc.details() or exc.code().name) from None
        status = reply.status
        if status.code or status.error_code:
            raise Unexpected(status.reason or f"status {status.code or status.error_code}")
        return reply

    def properties(self, collection: str) -> dict[str, str]:
        """The collection's properties (Unexpected when there is no such collection: MilvusClient says so)."""
        m = self.milvus
        reply = self._call("DescribeCollection", m.DescribeCollectionRequest(collection_name=collection),
                           m.DescribeCollectionResponse)
        return {p.key: p.value for p in reply.properties}

    def count(self, collection: str) -> int:
        m = self.milvus
        reply = self._call("Query", m.QueryRequest(collection_name=collection, expr="", output_fields=["count(*)"],
                                                  use_default_consistency=True), m.QueryResults)
        for field in reply.fields_data:
            if field.field_name == "count(*)":
                return int(field.scalars.long_data.data[0])
        raise Unexpected("no count(*) in the reply")

    def search(self, collection: str, query, field: str, limit: int, expr: str, params: dict) -> dict[int, float]:
        """{id: score} of one query: a dense vector, or text for a BM25 function's field."""
        m, c = self.milvus, self.common
        if isinstance(query, str):
            value = c.PlaceholderValue(tag="$0", type=_VARCHAR, values=[query.encode("utf-8")])
        else:
            value = c.PlaceholderValue(tag="$0", type=_FLOAT_VECTOR,
                                       values=[np.asarray(query, dtype="<f4").ravel().tobytes()])
        flat = {**params.get("params", {}), **{k: v for k, v in params.items() if k != "params"}}
        settings = {"topk": limit, "round_decimal": -1, "ignore_growing": False, "anns_field": field,
                    "params": flat}
        if "metric_type" in params:
            settings["metric_type"] = params["metric_type"]
        request = m.SearchRequest(
            collection_name=collection, dsl=expr, dsl_type=c.DslType.BoolExprV1, output_fields=["id"], nq=1,
            placeholder_group=c.PlaceholderGroup(placeholders=[value]).SerializeToString(),
            search_params=[c.KeyValuePair(key=k, value=json.dumps(v) if isinstance(v, dict) else str(v))
                           for k, v in settings.items()],
            use_default_consistency=True,
        )
        data = self._call("Search", request, m.SearchResults).results
        ids = list(data.ids.int_id.data)
        if len(ids) != len(data.scores):
            raise Unexpected("ids and scores differ in length")
        return {int(i): float(s) for i, s in zip(ids, data.scores)}

    def close(self) -> None:
        self.channel.close()
