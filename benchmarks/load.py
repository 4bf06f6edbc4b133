"""Load generators, each on the client core: `run_wrk` (requests/s and latency percentiles, one
URL or a Lua script cycling through paths: `path_cycle_script`) and `compare_wrk` (interleaved
rounds over several servers), `curl_download` and `python_download` (bytes/s of one big
response), `HttpClient` (timed keep-alive requests from this process), `interleaved` (the
contenders' order in one round), `best_seconds`."""

from __future__ import annotations

import dataclasses
import http.client
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .processes import ServerProcess
from .settings import CLIENT_CPU, DEFAULT_CONNECTIONS, DEFAULT_DURATION_S, PYTHON, REPO_ROOT, BenchmarkError, pinned


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
    server: ServerProcess | None = None,
    cpu: str = CLIENT_CPU,
    script: Path | None = None,
) -> WrkResult:
    """wrk on the client core against `url`; a short warm-up run first. Errors raise unless allowed.

    With `server`, the CPU time it used during the measured run is recorded too; with `script`
    (e.g. `path_cycle_script`), wrk runs that Lua script, whose requests may replace the path.
    """
    connections = connections or DEFAULT_CONNECTIONS
    header_args: list[str] = ["-s", str(script)] if script else []
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

    def median(self, figure: Callable[[WrkResult], float]) -> float:
        return statistics.median(figure(run) for run in self.runs)

    def summary(self) -> str:
        rates = [run.requests_per_s for run in self.runs]
        spread = f"median {statistics.median(rates):,.0f} req/s [{min(rates):,.0f}–{max(rates):,.0f}]"
        return f"{len(self.runs)} rounds: {spread}; best {self.best.summary()}"


Contender = TypeVar("Contender")


def interleaved(contenders: Sequence[Contender], round_number: int) -> list[Contender]:
    """The order of one round: as given in even rounds, reversed in odd ones (A B, B A, A B …),
    so neither side always runs first (right after a warm-up, or after the other's load)."""
    return list(contenders) if round_number % 2 == 0 else list(reversed(contenders))


@contextmanager
def path_cycle_script(paths: Sequence[str]) -> Iterator[Path]:
    """A wrk Lua script requesting `paths` (already URL-quoted) in turn, round and round, on
    each connection's keep-alive; removed on leaving the block."""
    if not paths or any('"' in path or "\\" in path for path in paths):
        raise BenchmarkError("path_cycle_script needs URL-quoted paths")
    listed = ",\n".join(f'  "{path}"' for path in paths)
    body = (
        f"local paths = {{\n{listed}\n}}\nlocal index = 0\n"
        'request = function()\n  index = index % #paths + 1\n  return wrk.format("GET", paths[index])\nend\n'
    )
    with tempfile.NamedTemporaryFile("w", prefix="bench-paths-", suffix=".lua") as script:
        script.write(body)
        script.flush()
        yield Path(script.name)


def compare_wrk(
    targets: Mapping[str, tuple[ServerProcess, str]],
    *,
    rounds: int = 3,
    duration_s: int | None = None,
    headers: Mapping[str, str] | None = None,
    scripts: Mapping[str, Path] | None = None,
) -> dict[str, Runs]:
    """wrk against each (server, path) in turn, `rounds` times interleaved (`interleaved`);
    `scripts` gives a contender a wrk Lua script (e.g. `path_cycle_script`).

    The machine may be shared: interleaving spreads outside load over every contender, the
    rows take the median [range] of the rounds, and each run also records the server's CPU
    time (requests per CPU-second hardly depend on outside load).
    """
    duration_s = duration_s or max(3, (DEFAULT_DURATION_S + rounds - 1) // rounds)
    runs: dict[str, list[WrkResult]] = {name: [] for name in targets}
    for round_number in range(rounds):
        for name in interleaved(list(targets), round_number):
            server, path = targets[name]
            warmup = 2 if round_number == 0 else 0
            script = (scripts or {}).get(name)
            url = server.make_url(path)
            result = run_wrk(url, duration_s=duration_s, headers=headers, warmup_s=warmup, server=server, script=script)
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
    argv = pinned(CLIENT_CPU, [PYTHON, "-m", "benchmarks.peers", "download", url, "--repeats", str(repeats)])
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
