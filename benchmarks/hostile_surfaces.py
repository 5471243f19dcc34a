"""The hostile probe of issue #22 against the surfaces, timed: huge queries, slow and idle connections, a dropped
index under a running server.

    python benchmarks/hostile_surfaces.py --home HOME --name NAME [--connections 500]

Give an existing index (e.g. `searchlm index sample_corpus --name sample --home /tmp/h`); it is copied, and the
copy is what gets dropped. Starts `searchlm serve --workers 1 --lazy --token-file FILE` and `searchlm mcp` as
subprocesses and prints, each as one line:

- how long the server takes to refuse a 10 MB query (GET request line, POST /api/ask body) and the MCP search
  tool a 10 MB query, what they answer, and how long the next ordinary search then takes;
- how many of N idle connections (and N that sent half a request line) the server still holds open after its
  header deadline (SEARCHLM_HEADER_TIMEOUT, 15 s by default; set it lower to run faster), and when they closed;
- how long after `searchlm drop` the server answers 404 and the MCP tool an error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import anyio

TOKEN = "hostile-probe-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, data: bytes | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {TOKEN}",
                                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _raw(port: int, data: bytes) -> tuple[float, str]:
    """Send `data` on a new connection (the server may stop reading it); the seconds until its answer, and the
    answer's status line."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(60)
        try:
            s.sendall(data)
        except OSError:
            pass
        try:
            answer = s.recv(65536)
        except OSError as exc:
            answer = f"<{type(exc).__name__}>".encode()
    return time.perf_counter() - started, answer.split(b"\r\n")[0].decode(errors="replace") or "closed"


def _held_open(port: int, count: int, first: bytes, wait: float) -> list[float]:
    """Open `count` connections that send `first` and then nothing; the seconds each stayed open (inf: still
    open after `wait`)."""
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        if first:
            s.sendall(first)
        s.setblocking(False)
        socks.append(s)
    started, closed = time.monotonic(), {}
    while len(closed) < count and time.monotonic() - started < wait:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                if s.recv(65536) == b"":
                    closed[i] = time.monotonic() - started
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic() - started
        time.sleep(0.1)
    for s in socks:
        s.close()
    return [closed.get(i, float("inf")) for i in range(count)]


async def _mcp(home: Path, name: str, drop) -> list[str]:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(command=sys.executable, args=["-m", "searchlm", "mcp", "--home", str(home),
                                                                 "--name", name], env={**os.environ})
    lines = []
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await session.call_tool("search", {"query": "warm up", "k": 1})
        started = time.perf_counter()
        result = await session.call_tool("search", {"query": "bees " * 2_000_000})
        took = time.perf_counter() - started
        text = " ".join(getattr(c, "text", "") for c in result.content)
        started = time.perf_counter()
        await session.call_tool("search", {"query": "honey bees", "k": 1})
        lines.append(f"mcp 10 MB query: refused in {took:.2f} s ({text[:120]!r}); next search {time.perf_counter() - started:.2f} s")
        drop()
        started = time.perf_counter()
        while True:
            result = await session.call_tool("search", {"query": "honey bees", "k": 1})
            if result.is_error:
                break
            await anyio.sleep(0.05)
        lines.append(f"mcp after drop: an error after {time.perf_counter() - started:.2f} s "
                     f"({' '.join(getattr(c, 'text', '') for c in result.content)[:120]!r})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--connections", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hostile-"))
    home = work / "indexes"
    shutil.copytree(args.home / args.name, home / args.name)
    token_file = work / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "searchlm", "serve", "--home", str(home), "--name", args.name, "--port", str(port),
         "--lazy", "--workers", "1", "--token-file", str(token_file)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                if _get(url + "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise SystemExit("the server did not start in 120 s")
            time.sleep(0.3)
        _get(url + "/api/search?q=warm+up&k=1")
        huge = b"bees+" * 2_000_000
        body = json.dumps({"question": "bees " * 2_000_000}).encode()
        auth = f"Authorization: Bearer {TOKEN}\r\n".encode()
        for label, data in (
            ("GET /api/search with a 10 MB query", b"GET /api/search?q=" + huge + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"\r\n"),
            ("POST /api/ask with a 10 MB question", b"POST /api/ask HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth
             + b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body),
        ):
            took, answer = _raw(port, data)
            started = time.perf_counter()
            status, _ = _get(url + "/api/search?q=honey+bees&k=1")
            print(f"http {label}: {answer} in {took:.2f} s; the next search {status} in "
                  f"{time.perf_counter() - started:.2f} s")
        timeout = float(os.environ.get("SEARCHLM_HEADER_TIMEOUT") or 15)
        for label, first in (("idle", b""), ("half a request line", b"GET /api/health HT")):
            held = _held_open(port, args.connections, first, timeout + 15)
            still = sum(t == float("inf") for t in held)
            done = sorted(t for t in held if t != float("inf"))
            print(f"{args.connections} {label} connections: {still} still open after {timeout + 15:.0f} s; "
                  f"closed after {done[0]:.1f}-{done[-1]:.1f} s" if done else f"{still} still open")
        status, _ = _get(url + "/api/search?q=honey+bees&k=1")
        subprocess.run([sys.executable, "-m", "searchlm", "drop", args.name, "--home", str(home), "--yes"], env=env,
                       check=True, capture_output=True)
        started = time.perf_counter()
        while (status := _get(url + "/api/search?q=honey+bees&k=1")[0]) == 200:
            time.sleep(0.05)
        print(f"http after drop: {status} after {time.perf_counter() - started:.2f} s")
    finally:
        server.terminate()
        server.wait(timeout=30)
    shutil.copytree(args.home / args.name, home / args.name)

    def drop() -> None:
        subprocess.run([sys.executable, "-m", "searchlm", "drop", args.name, "--home", str(home), "--yes"], env=env,
                       check=True, capture_output=True)

    for line in anyio.run(_mcp, home, args.name, drop):
        print(line)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
