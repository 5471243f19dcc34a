"""How soon `searchlm mcp` answers its first search (issue #14 target: <= 1 s after the server starts).

    python benchmarks/mcp_first_search.py --home HOME --name NAME [--runs 5] [--query "..."]

Each run starts a fresh `searchlm mcp` subprocess with the MCP SDK's own stdio client and times three stretches:
spawn -> initialized (process start, imports, MCP handshake), initialized -> first `search` result (opens the
index, loads the ONNX encoder and FAISS, searches: the figure the target is about), and a second search (warm).
Builds nothing: give an existing index (e.g. `searchlm index sample_corpus --name sample --home /tmp/h`).
Also reads the server process's CPU time (user + system, from /proc) over the first search: on a shared,
overloaded machine the wall time mostly waits for a core, and the CPU time is what the call costs on an idle one
(the cold encoder and FAISS use one thread each). Prints median figures and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import anyio


def _children() -> set[int]:
    found: set[int] = set()
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        try:
            with open(f"/proc/{os.getpid()}/task/{task}/children") as f:
                found.update(int(p) for p in f.read().split())
        except OSError:
            pass
    return found


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def one_run(home: str, name: str, query: str, mode: str) -> tuple[float, float, float, float]:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=sys.executable, args=["-m", "searchlm", "mcp", "--home", home, "--name", name],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    started = time.perf_counter()
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            server = max(_children())  # the newest child: the server process
            cpu = _cpu_seconds(server)
            ready = time.perf_counter()
            first = await session.call_tool("search", {"query": query, "k": 10, "mode": mode})
            done = time.perf_counter()
            cpu = _cpu_seconds(server) - cpu
            assert not first.is_error, first.content
            second = await session.call_tool("search", {"query": query + " again", "k": 10, "mode": mode})
            assert not second.is_error, second.content
            warm = time.perf_counter() - done
    return ready - started, done - ready, warm, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--name", default="default")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--query", default="How do honey bees keep warm during the winter?")
    parser.add_argument("--mode", default="hybrid")
    args = parser.parse_args()
    runs = [anyio.run(one_run, args.home, args.name, args.query, args.mode) for _ in range(args.runs + 1)][1:]
    start, first, warm, cpu = (statistics.median(x) for x in zip(*runs))
    print(f"{args.runs} runs after one untimed (page cache), mode {args.mode}, load average {os.getloadavg()}")
    print(f"spawn -> initialized      median {start:.3f} s  ({', '.join(f'{r[0]:.2f}' for r in runs)})")
    print(f"initialized -> 1st search median {first:.3f} s  ({', '.join(f'{r[1]:.2f}' for r in runs)})")
    print(f"server CPU for 1st search median {cpu:.3f} s  ({', '.join(f'{r[3]:.2f}' for r in runs)})")
    print(f"2nd search (warm)         median {warm:.3f} s")
    print(f"spawn -> 1st search       median {statistics.median(r[0] + r[1] for r in runs):.3f} s")


if __name__ == "__main__":
    main()
