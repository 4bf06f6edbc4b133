"""The peer processes the benchmarks measure ours against, and a Python download client:
`python -m benchmarks.peers bytes-server|file-server|download …` (plain processes, so they can
be pinned like ours)."""

from __future__ import annotations

import argparse
import http.client
import sys
import time
from collections.abc import Sequence
from pathlib import Path


def _serve_bytes(port: int, body_path: str, header_lines: list[str]) -> None:
    from aiohttp import web

    body = Path(body_path).read_bytes()
    headers = dict(line.split(": ", 1) for line in header_lines) or {"Content-Type": "application/json"}

    async def handler(_request: web.Request) -> web.Response:
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _serve_files(port: int, root: str) -> None:
    from aiohttp import web

    base = Path(root)

    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(base / request.match_info["path"])

    app = web.Application()
    app.router.add_get("/{path:.+}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _download(url: str, repeats: int) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    buffer = memoryview(bytearray(1024 * 1024))
    for _ in range(repeats):
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=60)
        started = time.perf_counter()
        connection.request("GET", path)
        response = connection.getresponse()
        if response.status != 200:
            raise SystemExit(f"status {response.status}")
        size = 0
        while True:
            n = response.readinto(buffer)
            if not n:
                break
            size += n
        elapsed = time.perf_counter() - started
        connection.close()
        print(f"{size}:{elapsed:.6f}", flush=True)


def _cli(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_bytes = commands.add_parser("bytes-server", help="answer every GET with fixed bytes")
    serve_bytes.add_argument("--port", type=int, required=True)
    serve_bytes.add_argument("--body", required=True)
    serve_bytes.add_argument("--header", action="append", default=[])
    serve_files = commands.add_parser("file-server", help="serve a folder with web.FileResponse")
    serve_files.add_argument("--port", type=int, required=True)
    serve_files.add_argument("--root", required=True)
    download = commands.add_parser("download", help="time downloads of one URL with http.client")
    download.add_argument("url")
    download.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.command == "bytes-server":
        _serve_bytes(args.port, args.body, args.header)
    elif args.command == "file-server":
        _serve_files(args.port, args.root)
    else:
        _download(args.url, args.repeats)


if __name__ == "__main__":
    _cli(sys.argv[1:])
