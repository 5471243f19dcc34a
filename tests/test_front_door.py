"""One front door: every surface maps its parameters with `SearchOptions.from_params`, makes one library call
that returns a `SearchResult`, and prints or serves `SearchResult.to_json`. The CLI's `--json`, `/api/search` (a
real uvicorn server) and MCP's `search` (the SDK's own client against a `searchlm mcp` subprocess) agree."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import sample_queries
from searchlm import InputError, SearchOptions, Searcher
from searchlm.cli import app
from searchlm.records import SearchResult

TYPO = "honey bess keep warm in wintre"  # searched as "... keep warm in winter" unless correction is off
# (query, the options as the CLI's flags, as /api/search's parameters, as MCP's arguments)
CASES = [(q, [], {}, {}) for q, _ in sample_queries()[:16]] + [
    (TYPO, [], {}, {}),
    (TYPO, ["--no-correct"], {"correct": "false"}, {"correct": False}),
    ("keyword search", ["--type", "txt,md", "-k", "4"], {"type": "txt,md", "k": 4}, {"types": ["txt", "md"], "k": 4}),
    ("bees", ["--path", "nowhere/*.md"], {"path": "nowhere/*.md"}, {"path": "nowhere/*.md"}),  # filtered to nothing
]
KEYS = {"query", "corrected", "filtered", "index", "hits", "timings"}


@pytest.fixture(scope="module")
def http_server(sample_index):
    """`searchlm serve`'s app on a real socket (uvicorn in a thread): its URL."""
    import uvicorn

    from searchlm.server import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(sample_index, load_generator=False), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 300
    while not server.started:
        assert thread.is_alive() and time.time() < deadline
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def _cli(settings, query: str, *flags: str) -> dict:
    result = CliRunner().invoke(app, ["search", query, *flags, "--home", str(settings.home), "--name", settings.name,
                                      "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _comparable(data: dict) -> dict:
    """What must be equal on every surface: everything but timings and the path's display form."""
    return {**{k: v for k, v in data.items() if k not in ("timings", "hits")},
            "hits": [{k: v for k, v in h.items() if k != "path"} for h in data["hits"]]}


@pytest.mark.slow
def test_cli_api_and_mcp_give_the_same_json_for_20_queries(sample_index, http_server):
    import httpx
    from test_mcp import data, with_session

    cli = [_cli(sample_index, q, *flags) for q, flags, _, _ in CASES]
    with httpx.Client(base_url=http_server, timeout=120) as client:
        api = [client.get("/api/search", params={"q": q, **params}).json() for q, _, params, _ in CASES]

    async def body(session):
        return [data(await session.call_tool("search", {"query": q, **args})) for q, _, _, args in CASES]

    mcp = with_session(sample_index, body)
    folder = Path(cli[0]["index"]["folder"])
    for (query, *_), c, a, m in zip(CASES, cli, api, mcp):
        assert set(c) == set(a) == set(m) == KEYS, query
        assert [set(h) for h in c["hits"]] == [set(h) for h in a["hits"]] == [set(h) for h in m["hits"]], query
        assert _comparable(c) == _comparable(a) == _comparable(m), query
        for hit in c["hits"]:  # the CLI shows paths from the working folder; the API and MCP absolute ones
            assert Path(hit["path"]).resolve() == folder / hit["rel_path"]
        for hit in a["hits"] + m["hits"]:
            assert hit["path"] == str(folder / hit["rel_path"])
    assert sum(bool(c["hits"]) for c in cli) == 19
    corrected, plain, typed, filtered = cli[-4:]
    assert corrected["corrected"].endswith("keep warm in winter") and plain["corrected"] is None
    assert {Path(h["rel_path"]).suffix for h in typed["hits"]} <= {".txt", ".md"} and len(typed["hits"]) == 4
    assert not filtered["hits"] and "nowhere" in filtered["filtered"]
    assert cli[0]["index"] == {"name": sample_index.name, "home": str(sample_index.home.resolve()),
                               "folder": str(folder)}


def test_remote_search_takes_every_option_the_local_one_does(sample_index, http_server):
    """`search --server` sends what it was given (correction off included) and prints the server's result as a
    local search prints its own."""
    flags = ("--home", str(sample_index.home), "--name", sample_index.name)
    for extra in ([], ["--no-correct"], ["--kind", "guide", "-k", "3", "--explain"]):
        local = CliRunner().invoke(app, ["search", TYPO, *flags, *extra, "--json"])
        remote = CliRunner().invoke(app, ["search", TYPO, *flags, *extra, "--json", "--server", http_server])
        assert local.exit_code == remote.exit_code == 0, remote.output
        assert _comparable(json.loads(local.stdout)) == _comparable(json.loads(remote.stdout)), extra
        assert ([h["path"] for h in json.loads(local.stdout)["hits"]]
                == [h["path"] for h in json.loads(remote.stdout)["hits"]])
    shown = CliRunner().invoke(app, ["search", TYPO, *flags, "--no-correct", "--server", http_server])
    assert "Showing results for" not in shown.stdout and shown.exit_code == 0
    shown = CliRunner().invoke(app, ["search", TYPO, *flags, "--server", http_server])
    assert "Showing results for 'honey" in shown.stdout and "keep warm in winter'" in shown.stdout


def test_the_api_shows_paths_inside_the_folder_on_request(sample_index, http_server):
    import httpx

    with httpx.Client(base_url=http_server, timeout=120) as client:
        data = client.get("/api/search", params={"q": "bees", "k": 2, "paths": "relative"}).json()
        bad = client.get("/api/search", params={"q": "bees", "explain": "maybe"})
        unknown = client.get("/api/search", params={"q": "bees", "colour": "red"})
    assert [h["path"] for h in data["hits"]] == [h["rel_path"] for h in data["hits"]]
    assert not Path(data["hits"][0]["path"]).is_absolute()
    assert data["index"] == {"name": sample_index.name, "home": None, "folder": None}  # nothing of the server's disk
    assert bad.status_code == 422
    assert unknown.status_code == 400 and "unknown search parameter 'colour'" in unknown.json()["detail"]


# -- SearchOptions.from_params ------------------------------------------------------------------------------
def test_from_params_reads_every_surface_s_forms():
    as_query_string = {"k": "5", "type": "md,pdf", "kind": ["guide", "api"], "correct": "false", "exclude": "a/*",
                       "dense_weight": "0.3", "group_by_document": "1", "since": ""}
    as_json = {"k": 5, "types": ["md", "pdf"], "kinds": "guide,api", "correct": False, "exclude": ["a/*"],
               "dense_weight": 0.3, "group_by_document": True, "since": None}
    one = SearchOptions.from_params(as_query_string)
    assert one == SearchOptions.from_params(as_json)
    assert (one.k, one.types, one.doc_kinds, one.correct, one.exclude, one.since) == (
        5, ("md", "pdf"), ("guide", "api"), False, ("a/*",), None)
    assert SearchOptions.from_params({}) == SearchOptions()
    assert SearchOptions.from_params({"k": ["3", "7"]}).k == 7  # a repeated scalar: the last, as FastAPI reads it


def test_to_params_round_trips_and_names_only_changes():
    options = SearchOptions(k=3, mode="keyword", types=("md",), doc_kinds=("api",), exclude=("x/*", "y"),
                            correct=False, explain=True, rerank="lm", rerank_weight=0.4)
    params = options.to_params()
    assert SearchOptions.from_params(params) == options
    assert params["correct"] == "false" and params["type"] == "md" and "fusion" not in params
    assert SearchOptions().to_params() == {}


@pytest.mark.parametrize("params, message", [
    ({"k": "ten"}, "k 'ten' is not a whole number"),
    ({"explain": "maybe"}, "explain 'maybe' is not true or false"),
    ({"dense_weight": "nan"}, "dense_weight 'nan' is not a number"),
    ({"types": [1, 2]}, "is not a list of words"),
    ({"colour": "red"}, "unknown search parameter 'colour'"),
])
def test_from_params_refuses_what_it_cannot_read(params, message):
    with pytest.raises(InputError, match=message):
        SearchOptions.from_params(params)


# -- SearchResult -------------------------------------------------------------------------------------------
def test_one_search_call_gives_hits_correction_and_why_filters_emptied_it(sample_index):
    with Searcher(sample_index) as searcher:
        fixed = searcher.search(TYPO, k=3)
        empty = searcher.search("bees", path="nowhere/*.md")
        plain = searcher.search(TYPO, k=3, correct=False)
    assert isinstance(fixed, SearchResult) and fixed.corrected.endswith("keep warm in winter")
    assert fixed.searched == fixed.corrected and plain.corrected is None
    assert len(fixed) == 3 and fixed[0] is fixed.hits[0] and list(fixed) == fixed.hits  # reads as its hits
    assert fixed.answered_by.name == sample_index.name and Path(fixed.answered_by.folder).is_absolute()
    assert fixed.index(fixed[1]) == 1  # like the list of hits a search used to return
    assert set(fixed.timings) == {"prepare", "search"} and "filters" in empty.timings
    assert not empty and "nowhere" in empty.filtered
    hit = fixed[0]
    assert not Path(hit.path).is_absolute() and hit.full_path == str(Path(hit.folder) / hit.path)
    assert hit.location("relative") == (f"{hit.path}:{hit.start_line}" if hit.start_line else hit.path)
    again = SearchResult.from_json(json.loads(json.dumps(fixed.to_json())))
    assert again.to_json() | {"timings": None} == fixed.to_json() | {"timings": None}


def test_hits_show_their_path_only_at_the_edge(sample_index, monkeypatch, tmp_path):
    """The same hit shown from two working folders: the stored path never changes, the CLI's view does."""
    with Searcher(sample_index) as searcher:
        hit = searcher.search("bees", k=1)[0]
    folder = Path(hit.folder)
    monkeypatch.chdir(folder.parent)
    assert hit.to_json("cwd")["path"] == str(Path(folder.name) / hit.path)
    monkeypatch.chdir(tmp_path)
    assert hit.to_json("cwd")["path"] == str(folder / hit.path) == hit.to_json("absolute")["path"]
    assert hit.to_json("relative")["path"] == hit.path == hit.to_json()["rel_path"]
