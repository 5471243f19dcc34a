"""`searchlm mcp` end to end: the MCP SDK's own client talks to a real `searchlm mcp` subprocess over stdio,
on a real index of sample_corpus/."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import anyio
import pytest

from conftest import REPO

pytest.importorskip("mcp")


def _params(settings):
    from mcp.client.stdio import StdioServerParameters

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "searchlm", "mcp", "--home", str(settings.home), "--name", settings.name],
        env=env, cwd=str(REPO),
    )


def with_session(settings, body, errlog=None):
    """Run `body(session)` against a fresh server process (its stderr to `errlog`); returns what it returns."""
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    async def main():
        async with stdio_client(_params(settings), errlog=errlog or sys.stderr) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await body(session)

    return anyio.run(main)


def data(result) -> dict:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def error_text(result) -> str:
    assert result.is_error, result
    return " ".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.slow
def test_tools_list_and_answer(sample_index):
    async def body(session):
        tools = {t.name: t for t in (await session.list_tools()).tools}
        found = await session.call_tool("search", {"query": "How do honey bees keep warm during the winter?", "k": 3})
        cjk = await session.call_tool("search", {"query": "熊猫", "mode": "keyword", "k": 3})
        filtered = await session.call_tool("search", {"query": "keyword search", "types": ["txt"], "k": 5})
        indexes = await session.call_tool("list_indexes", {})
        hit = data(found)["hits"][0]
        by_id = await session.call_tool("get_document", {"doc_id": hit["doc_id"]})
        rel = "misc/beekeeping.rst"
        by_path = await session.call_tool("get_document", {"path": rel, "start_line": hit["start_line"], "end_line": hit["start_line"]})
        refused = await session.call_tool("ask", {"question": "What is the airspeed velocity of an unladen swallow in Norway?"})
        return tools, found, cjk, filtered, indexes, by_id, by_path, refused

    tools, found, cjk, filtered, indexes, by_id, by_path, refused = with_session(sample_index, body)
    assert set(tools) == {"search", "get_document", "ask", "list_indexes"}
    assert all(len(t.description or "") > 80 for t in tools.values())
    assert set(tools["search"].input_schema["properties"]) >= {"query", "k", "mode", "path", "types", "since", "index"}
    assert tools["search"].input_schema["required"] == ["query"]

    hits = data(found)["hits"]
    assert len(hits) == 3 and hits[0]["path"].endswith("misc/beekeeping.rst")
    assert {"path", "start_line", "end_line", "heading", "text", "score", "doc_id"} <= set(hits[0])
    assert hits[0]["score"] > 0 and hits[0]["text"]
    assert data(cjk)["hits"][0]["path"].endswith("cjk/zh-giant-panda.md")
    assert {h["path"].rsplit(".", 1)[-1] for h in data(filtered)["hits"]} == {"txt"}

    listed = data(indexes)
    assert [i["name"] for i in listed["indexes"]] == ["sample"] and listed["indexes"][0]["documents"] >= 30

    whole = data(by_id)
    assert whole["path"].endswith("misc/beekeeping.rst") and hits[0]["text"][:40] in whole["text"]
    part = data(by_path)
    assert part["doc_id"] == whole["doc_id"] and hits[0]["text"][:40] in part["text"]
    assert len(part["text"]) < len(whole["text"])

    answer = data(refused)
    assert answer["refused"] is True and answer["citations"] == []


@pytest.mark.slow
def test_bad_input_is_a_tool_error_and_the_server_lives_on(sample_index, tmp_path):
    async def body(session):
        calls = [
            ("search", {}),  # missing query
            ("search", {"query": "bees", "k": "ten"}),  # wrong type
            ("search", {"query": "bees", "index": "nope"}),  # unknown index
            ("search", {"query": "bees", "index": "../sample"}),  # not an index name
            ("search", {"query": "   "}),  # empty query
            ("search", {"query": "bees", "mode": "fuzzy"}),
            ("search", {"query": "bees", "since": "last week"}),
            ("get_document", {"doc_id": 99999}),
            ("get_document", {}),
            ("get_document", {"path": "no/such/file.md"}),
            ("ask", {"question": ""}),
            ("no_such_tool", {}),
            ("search", {"query": "bees " * 2_000_000}),  # 10 MB: it once held the server for 15 minutes
            ("ask", {"question": "why " * 300}),
            ("get_document", {"doc_id": 2**70}),  # past SQLite's integers: it was a logged traceback
            ("get_document", {"doc_id": 0}),
            ("search", {"query": "bees", "k": "ten", "mode": "fuzzy"}),  # two wrong arguments
            ("ask", {"question": "why?", "max_tokens": 10**9}),
        ]
        results = [await session.call_tool(name, args) for name, args in calls]
        after = await session.call_tool("search", {"query": "sourdough starter", "k": 1})
        return results, after

    with open(tmp_path / "stderr", "w") as errlog:
        results, after = with_session(sample_index, body, errlog)
    texts = [error_text(r) for r in results]
    assert all("\n" not in t for t in texts), [t for t in texts if "\n" in t]
    assert "Traceback" not in (tmp_path / "stderr").read_text()
    assert "query" in texts[0] and ("required" in texts[0].lower() or "missing" in texts[0].lower())
    assert "k" in texts[1]
    assert "index 'nope' not found" in texts[2] and "sample" in texts[2]
    assert "not valid" in texts[3]
    assert "empty" in texts[4]
    assert "mode" in texts[5]
    assert "last week" in texts[6]
    assert "99999" in texts[7]
    assert "doc_id or path" in texts[8]
    assert "no/such/file.md" in texts[9]
    assert "empty" in texts[10]
    assert "no_such_tool" in texts[11]
    assert "query is 10,000,000 characters, over the limit of 1,000" in texts[12] and len(texts[12]) < 300
    assert "question is 1,200 characters, over the limit" in texts[13]
    assert f"doc_id {2**70} is not an id" in texts[14] and "doc_id 0 is not an id" in texts[15]
    assert texts[16].count("k:") == 1 and texts[16].count("mode:") == 1
    assert "max_tokens 1000000000 is over the limit of 1024 (use max_tokens=1024 or less)" in texts[17]
    assert data(after)["hits"][0]["path"].endswith("misc/sourdough-baking.md")


@pytest.mark.slow
def test_ask_answers_with_citations(sample_index):
    async def body(session):
        return await session.call_tool(
            "ask", {"question": "How do honey bees keep warm during the winter?", "k": 3, "max_tokens": 48}
        )

    answer = data(with_session(sample_index, body))
    assert answer["refused"] is False and answer["answer"]
    assert answer["citations"] and all(c["path"].endswith(".rst") or c["path"] for c in answer["citations"])
    assert any(c["path"].endswith("misc/beekeeping.rst") for c in answer["citations"])


def test_server_start_loads_nothing_heavy(tmp_path):
    code = (
        "import sys; from searchlm.mcp_server import build_server; from searchlm.settings import Settings; "
        f"build_server(Settings(home={str(tmp_path)!r})); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'faiss', 'onnxruntime', "
        "'sentence_transformers', 'onnxruntime'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_a_dropped_index_is_an_error_and_a_replaced_one_is_searched_anew(make_index, embedder):
    from searchlm.indexing.admin import drop_index
    from searchlm.indexing.indexer import index_folder

    settings, _, corpus = make_index({"old.md": "# Lighthouses\n\nThe lighthouse keeper trims the lamp wick.\n"})

    async def until(check):  # the server looks at an index's manifest at most once a second
        for _ in range(75):
            found = await check()
            if found:
                return found
            await anyio.sleep(0.2)
        return await check()

    async def body(session):
        async def search():
            return await session.call_tool("search", {"query": "lighthouse keeper", "k": 1})

        before = data(await search())["hits"][0]
        drop_index(settings)
        gone = await until(lambda: _error(search()))
        document = await session.call_tool("get_document", {"doc_id": before["doc_id"]})
        (corpus / "old.md").unlink()
        (corpus / "new.md").write_text("# Tugboats\n\nThe lighthouse keeper watches tugboats tow barges.\n")
        index_folder(corpus, settings, embedder=embedder)
        after = await until(lambda: _ok(search()))
        return before, gone, document, after

    before, gone, document, after = with_session(settings, body)
    assert before["path"].endswith("old.md")
    assert "index 't' not found" in error_text(gone) and "\n" not in error_text(gone)
    assert "index 't' not found" in error_text(document)
    assert data(after)["hits"][0]["path"].endswith("new.md")


async def _error(call):
    result = await call
    return result if result.is_error else None


async def _ok(call):
    result = await call
    return result if not result.is_error else None
