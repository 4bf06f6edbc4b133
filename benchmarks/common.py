"""The shared benchmark harness: data, servers, peers, load generators and the ratio table.

Every benchmark measures our server and a peer in the same run on the same machine, with the
server (and peers) pinned to one core and the load generator to the other (`taskset`), and
prints ours ÷ peer against a goal. This module owns:

- data: `ensure_library(name, *make_library_args)` and `random_file(name, size)` build test
  data once under `/work/bench-data/` (outside the repo; `BENCH_DATA` overrides) and reuse it;
- servers: `start_catalog_server(models_dir)` (ours, `python -m server`), and peers:
  `start_bytes_peer(body)` (a minimal aiohttp handler returning fixed bytes),
  `start_file_peer(root)` (a bare `web.FileResponse` file server), `start_nginx(root)`;
  each is a `Process` (a context manager) with its URL, log and RSS;
- load: `run_wrk(url)` (requests/s and latency percentiles), `curl_download(url)` and
  `python_download(url)` (bytes/s of one big response), `HttpClient` (timed keep-alive requests);
  `compare_wrk(urls)` interleaves rounds over several servers and keeps each one's best, as
  the machine may be shared with other work;
- memory: `rss_kib(pid)` and `RssSampler` (peak RSS while a block runs);
- output: `Ratio` rows and `print_table(title, rows)`.

The peers run as `python -m benchmarks.common bytes-server|file-server …`, so they are plain
processes that can be pinned like ours.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DATA_DIR = Path(os.environ.get("BENCH_DATA", "/work/bench-data"))
MAKE_LIBRARY = Path(os.environ.get("BENCH_MAKE_LIBRARY", "/work/shared/bench/make_library.py"))
SERVER_CPU = os.environ.get("BENCH_SERVER_CPU", "0")
CLIENT_CPU = os.environ.get("BENCH_CLIENT_CPU", "1")
# The checkout whose `python -m server` is measured (another worktree gives a "before" figure).
CHECKOUT = Path(os.environ.get("BENCH_CHECKOUT", str(REPO_ROOT))).resolve()
DEFAULT_DURATION_S = int(os.environ.get("BENCH_DURATION", "10"))
DEFAULT_CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "64"))
START_TIMEOUT_S = 30.0
# The machine may be shared with other work: benchmark processes run at a higher priority
# (root only; BENCH_NICE=0 turns it off) so outside load disturbs the figures less.
NICE = os.environ.get("BENCH_NICE", "-10" if os.geteuid() == 0 else "0")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def pinned(cpu: str, argv: Sequence[str]) -> list[str]:
    """argv run on one core (taskset), at the benchmark priority (nice)."""
    adjustment = int(NICE) - os.getpriority(os.PRIO_PROCESS, 0)  # nice -n is relative to ours
    prefix = ["nice", "-n", str(adjustment)] if adjustment else []
    return [*prefix, "taskset", "-c", cpu, *argv]


class BenchmarkError(RuntimeError):
    """A benchmark could not measure what it set out to (a peer failed, errors under load)."""


# -- data ------------------------------------------------------------------------------


def ensure_library(name: str, *args: str) -> Path:
    """A library made by make_library.py with `args`, under DATA_DIR/name; reused when unchanged."""
    root = DATA_DIR / name
    stamp = DATA_DIR / f"{name}.args"
    wanted = " ".join(args)
    if root.is_dir() and stamp.is_file() and stamp.read_text() == wanted:
        return root
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    print(f"generating {root} ({wanted}) …", file=sys.stderr, flush=True)
    subprocess.run([PYTHON, str(MAKE_LIBRARY), "--root", str(root), "--force", *args], check=True)
    stamp.write_text(wanted)
    return root


def random_file(relative: str, size: int) -> Path:
    """A file of `size` random bytes at DATA_DIR/relative, written once and reused."""
    path = DATA_DIR / relative
    if path.is_file() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"writing {size} random bytes to {path} …", file=sys.stderr, flush=True)
    partial = path.with_name(path.name + ".partial")
    chunk = 16 * 1024 * 1024
    with open(partial, "wb") as out:
        left = size
        while left > 0:
            out.write(os.urandom(min(chunk, left)))
            left -= chunk
    partial.rename(path)
    return path


def warm_page_cache(path: Path) -> None:
    """Read a file once so the page cache holds it (benchmarks compare warm-cache serving)."""
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(8 * 1024 * 1024)
        while handle.readinto(buffer):
            pass


def pin_to_client_core() -> None:
    """Pin this (harness) process to the client core at the benchmark priority."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {int(CLIENT_CPU)})
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, int(NICE))


@contextlib.contextmanager
def on_server_core() -> Iterator[None]:
    """Run an in-process measurement on the server's core (while the server idles), so it
    meets the same outside load as the server, then go back to the client core."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(SERVER_CPU)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


# -- processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler:
    """Samples a process's RSS in a thread while the `with` block runs; keeps the peak."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.peak_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, rss_kib(self.pid))
            self.samples += 1
            self._stop.wait(self.interval_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kib = max(self.peak_kib, rss_kib(self.pid))


@dataclass
class Process:
    """A server started for a benchmark: pinned, logged to a file, stopped on exit."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    workdir: Path
    on_stop: list[Callable[[], object]] = field(default_factory=list, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        while self.on_stop:
            self.on_stop.pop()()

    def __enter__(self) -> Process:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wait_until_answering(process: Process, ready_path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise BenchmarkError(f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", process.port, timeout=2)
            connection.request("GET", ready_path)
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            time.sleep(0.05)
    process.stop()
    raise BenchmarkError(f"{process.name} did not answer within {START_TIMEOUT_S:.0f} s:\n{process.log_tail()}")


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    ready_path: str = "/",
    cpu: str = SERVER_CPU,
    env: Mapping[str, str] | None = None,
    workdir: Path | None = None,
    cwd: Path = REPO_ROOT,
) -> Process:
    """Start `argv` pinned to `cpu`, output in workdir/server.log; return once it answers HTTP.

    Without `workdir` a temporary folder is made; it is removed when the process stops.
    """
    on_stop: list[Callable[[], object]] = []
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name.split()[0]}-"))
        on_stop.append(functools.partial(shutil.rmtree, workdir, ignore_errors=True))
    full_env = dict(os.environ)
    full_env.update(env or {})
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - the child owns it for its lifetime
    try:
        popen = subprocess.Popen(
            pinned(cpu, argv),
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    process = Process(name, popen, port, workdir, on_stop)
    try:
        _wait_until_answering(process, ready_path)
    except BaseException:
        process.stop()
        raise
    return process


def start_catalog_server(
    models_dir: Path,
    *extra_args: str,
    env: Mapping[str, str] | None = None,
    checkout: Path = CHECKOUT,
    cpu: str = SERVER_CPU,
) -> Process:
    """Our server (`python -m server` run in `checkout`: BENCH_CHECKOUT or this one) on a free port.

    Another `checkout` (e.g. `git worktree add /tmp/base main`) measures a before/after in one run.
    """
    port = free_port()
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-ours-cache-"))
    argv = [PYTHON, "-m", "server", "--models-dir", str(models_dir), "--port", str(port), "--cache-dir", str(cache_dir)]
    try:
        process = start_process(
            "archive-catalog", [*argv, *extra_args], port=port, ready_path="/healthz", env=env, cwd=checkout, cpu=cpu
        )
    except BaseException:
        shutil.rmtree(cache_dir, ignore_errors=True)
        raise
    process.on_stop.append(functools.partial(shutil.rmtree, cache_dir, ignore_errors=True))
    return process


def start_bytes_peer(body: bytes, headers: Mapping[str, str] | None = None) -> Process:
    """A minimal aiohttp app answering every GET with `body` (and `headers`): the req/s ceiling."""
    port = free_port()
    body_dir = Path(tempfile.mkdtemp(prefix="bench-bytes-body-"))
    body_path = body_dir / "body"
    body_path.write_bytes(body)
    header_args: list[str] = []
    for key, value in (headers or {"Content-Type": "application/json"}).items():
        header_args += ["--header", f"{key}: {value}"]
    process = start_process(
        "minimal aiohttp",
        [
            PYTHON,
            "-m",
            "benchmarks.common",
            "bytes-server",
            "--port",
            str(port),
            "--body",
            str(body_path),
            *header_args,
        ],
        port=port,
    )
    process.on_stop.append(functools.partial(shutil.rmtree, body_dir, ignore_errors=True))
    return process


def start_file_peer(root: Path) -> Process:
    """A bare aiohttp app serving files under `root` with `web.FileResponse` (sendfile, no checks)."""
    port = free_port()
    return start_process(
        "aiohttp FileResponse",
        [PYTHON, "-m", "benchmarks.common", "file-server", "--port", str(port), "--root", str(root)],
        port=port,
    )


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ {location} }}
    }}
}}
"""


def start_nginx(root: Path, location: str = "") -> Process:
    """nginx (one process) serving `root` on loopback; `location` adds directives to `location /`."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=workdir, port=port, root=root, location=location))
    try:
        process = start_process("nginx", [nginx, "-p", str(workdir), "-c", str(conf)], port=port, workdir=workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    process.on_stop.append(functools.partial(shutil.rmtree, workdir, ignore_errors=True))
    return process


# -- load generators -------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    requests: int
    latency_avg_ms: float
    latency_p50_ms: float
    latency_p99_ms: float
    non_2xx_3xx: int
    socket_errors: int
    transfer_per_s: str
    output: str
    server_cpu_s: float | None = None  # CPU time the server used during the run, if known

    @property
    def requests_per_cpu_s(self) -> float | None:
        """Requests per CPU-second of the server: what req/s would be on a core of its own."""
        return self.requests / self.server_cpu_s if self.server_cpu_s else None

    def summary(self) -> str:
        per_cpu = f", {self.requests_per_cpu_s:,.0f} req per server CPU-s" if self.requests_per_cpu_s else ""
        return (
            f"{self.requests_per_s:,.0f} req/s{per_cpu}, latency avg {self.latency_avg_ms:.2f} ms, "
            f"p50 {self.latency_p50_ms:.2f} ms, p99 {self.latency_p99_ms:.2f} ms, {self.transfer_per_s}/s"
        )


_LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise BenchmarkError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _LATENCY_UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    def find(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            if default is None:
                raise BenchmarkError(f"wrk output without {pattern!r}:\n{output}")
            return default
        return match.group(1)

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests_per_s=float(find(r"^Requests/sec:\s+([\d.]+)")),
        requests=int(find(r"^\s+(\d+) requests in")),
        latency_avg_ms=_ms(find(r"^\s+Latency\s+(\S+)")),
        latency_p50_ms=_ms(find(r"^\s+50%\s+(\S+)")),
        latency_p99_ms=_ms(find(r"^\s+99%\s+(\S+)")),
        non_2xx_3xx=int(find(r"Non-2xx or 3xx responses: (\d+)", "0")),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        transfer_per_s=find(r"^Transfer/sec:\s+(\S+)"),
        output=output,
    )


def run_wrk(
    url: str,
    *,
    duration_s: int | None = None,
    connections: int | None = None,
    threads: int = 1,
    headers: Mapping[str, str] | None = None,
    warmup_s: int = 2,
    allow_errors: bool = False,
    server: Process | None = None,
    cpu: str = CLIENT_CPU,
) -> WrkResult:
    """wrk on the client core against `url`; a short warm-up run first. Errors raise unless allowed.

    With `server`, the CPU time it used during the measured run is recorded too.
    """
    connections = connections or DEFAULT_CONNECTIONS
    header_args: list[str] = []
    for key, value in (headers or {}).items():
        header_args += ["-H", f"{key}: {value}"]

    def wrk(seconds: int) -> str:
        argv = ["wrk", "--latency", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        done = subprocess.run(pinned(cpu, [*argv, *header_args, url]), capture_output=True, text=True)
        if done.returncode != 0:
            raise BenchmarkError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        return done.stdout

    if warmup_s > 0:
        wrk(warmup_s)
    cpu_before = server.cpu_seconds() if server else 0.0
    output = wrk(duration_s or DEFAULT_DURATION_S)
    result = parse_wrk(output)
    if server is not None:
        result = dataclasses.replace(result, server_cpu_s=server.cpu_seconds() - cpu_before)
    if not allow_errors and (result.non_2xx_3xx or result.socket_errors):
        raise BenchmarkError(f"wrk saw errors against {url}:\n{result.output}")
    return result


@dataclass(frozen=True)
class Runs:
    """Several wrk runs of one server: the best req/s and the best req per server CPU-second."""

    runs: tuple[WrkResult, ...]

    @property
    def best(self) -> WrkResult:
        return max(self.runs, key=lambda r: r.requests_per_s)

    @property
    def requests_per_s(self) -> float:
        return self.best.requests_per_s

    @property
    def requests_per_cpu_s(self) -> float:
        return max((r.requests_per_cpu_s or 0.0) for r in self.runs)

    def summary(self) -> str:
        return f"best of {len(self.runs)}: {self.best.summary()}; best {self.requests_per_cpu_s:,.0f} req/CPU-s"


def compare_wrk(
    targets: Mapping[str, tuple[Process, str]],
    *,
    rounds: int = 3,
    duration_s: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Runs]:
    """wrk against each (server, path) in turn, `rounds` times interleaved.

    The machine may be shared: interleaving spreads outside load over every contender, the
    best of several runs is the least disturbed estimate, and each run also records the
    server's CPU time (requests per CPU-second hardly depend on outside load).
    """
    duration_s = duration_s or max(3, (DEFAULT_DURATION_S + rounds - 1) // rounds)
    runs: dict[str, list[WrkResult]] = {name: [] for name in targets}
    for round_number in range(rounds):
        for name, (server, path) in targets.items():
            warmup = 2 if round_number == 0 else 0
            result = run_wrk(server.url(path), duration_s=duration_s, headers=headers, warmup_s=warmup, server=server)
            runs[name].append(result)
    return {name: Runs(tuple(results)) for name, results in runs.items()}


def best_seconds(measure: Callable[[], float], repeats: int) -> float:
    """The fastest of `repeats` timings (outside load only ever slows a run down)."""
    return min(measure() for _ in range(repeats))


@dataclass(frozen=True)
class Download:
    """Repeated downloads of one URL: sizes checked, throughput in bytes/s."""

    size: int
    seconds: tuple[float, ...]

    @property
    def best_bytes_per_s(self) -> float:
        return self.size / min(self.seconds)

    @property
    def median_bytes_per_s(self) -> float:
        return self.size / statistics.median(self.seconds)


def curl_download(url: str, expected_size: int, repeats: int = 5) -> Download:
    """curl (client core) fetching `url` to /dev/null `repeats` times; curl's own transfer time."""
    seconds = []
    for _ in range(repeats):
        out = "%{http_code} %{size_download} %{time_total}"
        argv = pinned(CLIENT_CPU, ["curl", "-s", "-o", "/dev/null", "-w", out, url])
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        status, size, elapsed = [*done.stdout.split(), "", "0", "0"][:3]
        if done.returncode != 0 or status != "200" or int(size) != expected_size:
            raise BenchmarkError(f"curl {url}: exit {done.returncode}, status {status}, {size} bytes")
        seconds.append(float(elapsed))
    return Download(expected_size, tuple(seconds))


def python_download(url: str, expected_size: int, repeats: int = 5) -> Download:
    """A Python client (http.client, readinto a 1 MiB buffer) on the client core."""
    argv = pinned(CLIENT_CPU, [PYTHON, "-m", "benchmarks.common", "download", url, "--repeats", str(repeats)])
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise BenchmarkError(f"python download of {url} failed: {done.stderr}")
    seconds = []
    for line in done.stdout.split():
        size, _, elapsed = line.partition(":")
        if int(size) != expected_size:
            raise BenchmarkError(f"python download of {url}: {size} bytes, expected {expected_size}")
        seconds.append(float(elapsed))
    return Download(expected_size, tuple(seconds))


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float


class HttpClient:
    """One keep-alive connection for timed requests from the harness process."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        host_port = base_url.removeprefix("http://").rstrip("/")
        host, _, port = host_port.partition(":")
        self._connection = http.client.HTTPConnection(host, int(port or 80), timeout=timeout_s)

    def request(
        self, method: str, path: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> Reply:
        started = time.perf_counter()
        self._connection.request(method, path, body=body, headers=dict(headers or {}))
        response = self._connection.getresponse()
        data = response.read()
        elapsed = time.perf_counter() - started
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data, elapsed)

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        reply = self.request("GET", path, headers)
        if reply.status != 200:
            raise BenchmarkError(f"GET {path} answered {reply.status}: {reply.body[:300]!r}")
        return reply

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# -- output ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """ours ÷ peer for one measure, against a goal (≥ goal when higher is better, else ≤)."""

    measure: str
    ours: float
    peer: float
    peer_name: str
    unit: str
    goal: float
    higher_is_better: bool = True

    @property
    def ratio(self) -> float:
        return self.ours / self.peer if self.peer else float("inf")

    @property
    def met(self) -> bool:
        return self.ratio >= self.goal if self.higher_is_better else self.ratio <= self.goal


def throughput_rows(measure: str, ours: Runs, peer: Runs, peer_name: str, goal: float) -> list[Ratio]:
    """Two rows for a wrk comparison: best req/s, and req per server CPU-second (noise-robust)."""
    return [
        Ratio(measure, ours.requests_per_s, peer.requests_per_s, peer_name, "req/s", goal),
        Ratio("  … per server CPU-s", ours.requests_per_cpu_s, peer.requests_per_cpu_s, peer_name, "req/CPU-s", goal),
    ]


def format_value(value: float, unit: str) -> str:
    if unit == "B/s":
        for scale, name in ((1e9, "GB/s"), (1e6, "MB/s"), (1e3, "kB/s")):
            if value >= scale:
                return f"{value / scale:.2f} {name}"
        return f"{value:.0f} B/s"
    if unit == "s":
        return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"
    if unit == "KiB":
        return f"{value / 1024:.1f} MiB"
    return f"{value:,.0f} {unit}"


def print_table(title: str, rows: Sequence[Ratio], notes: Sequence[str] = ()) -> None:
    header = ("measure", "ours", "peer", "ratio", "goal", "")
    table = [header]
    for row in rows:
        sign = "≥" if row.higher_is_better else "≤"
        table.append(
            (
                row.measure,
                format_value(row.ours, row.unit),
                f"{format_value(row.peer, row.unit)} ({row.peer_name})",
                f"{row.ratio:.2f}",
                f"{sign} {row.goal:g}",
                "met" if row.met else "MISSED",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    print(f"\n== {title} ==")
    for i, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * width for width in widths))
    for note in notes:
        print(f"  {note}")
    print(flush=True)


def environment_note() -> str:
    return (
        f"server core {SERVER_CPU}, client core {CLIENT_CPU}, nice {NICE}, wrk {DEFAULT_CONNECTIONS} connections × "
        f"{DEFAULT_DURATION_S} s, Python {sys.version.split()[0]}, ours from {CHECKOUT}"
    )


# -- peer processes (python -m benchmarks.common …) ------------------------------------


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
    parser = argparse.ArgumentParser(prog="python -m benchmarks.common")
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
