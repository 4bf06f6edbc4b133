"""Servers as real processes, the one harness of the tests and the benchmarks: start a command,
wait until it answers HTTP, keep its output in a log file, stop it (SIGTERM, then SIGKILL) and
hand back that output; our own server's command line; free ports, RSS and CPU time of a process.

Standard library only, so `tests/` and `benchmarks/` both import it.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .settings import PYTHON, REPO_ROOT

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerDidNotStart(RuntimeError):
    """The process exited, or did not answer HTTP in time; the message holds its output."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU seconds of all its threads) of a live process, else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (0 if it is gone)."""
    stat = proc_stat(pid)
    return stat[1] if stat else 0.0


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
class ServerProcess:
    """A server process on a loopback port, its output in `log_path`; stopped on leaving `with`."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    on_stop: list[Callable[[], object]] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def make_url(self, path: str) -> str:
        return self.url + path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> str:
        """SIGTERM (a graceful stop), SIGKILL after `timeout_s`; returns the whole output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        output = self.output()
        while self.on_stop:
            self.on_stop.pop()()
        return output

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wait_until_answering(server: ServerProcess, ready_path: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerDidNotStart(f"{server.name} exited with {server.process.returncode}:\n{server.output()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
            try:
                connection.request("GET", ready_path, headers={"Connection": "close"})
                connection.getresponse().read()
            finally:
                connection.close()
            return
        except OSError:
            time.sleep(0.05)
    raise ServerDidNotStart(f"{server.name} did not answer within {timeout_s:.0f} s:\n{server.output()}")


def start_process(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    log_path: Path,
    ready_path: str = "/",
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO_ROOT,
    timeout_s: float = 60.0,
    on_stop: Sequence[Callable[[], object]] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> ServerProcess:
    """Start `argv` (output to `log_path`) and return once GET `ready_path` answers on `port`.

    `on_stop` runs when the process is stopped, also when it failed to start; `preexec_fn` runs
    in the child before exec (e.g. to drop privileges).
    """
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec_fn,
        )
    server = ServerProcess(name, process, port, log_path, list(on_stop))
    try:
        _wait_until_answering(server, ready_path, timeout_s)
    except BaseException:
        server.stop()
        raise
    return server


def catalog_argv(models_dir: Path, cache_dir: Path, port: int, *args: str) -> list[str]:
    """The command line of our server (`python -m server`) on `port`."""
    return [
        PYTHON,
        "-m",
        "server",
        "--port",
        str(port),
        "--models-dir",
        str(models_dir),
        "--cache-dir",
        str(cache_dir),
        *args,
    ]
