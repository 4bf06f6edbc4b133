"""Settings: one frozen Config built from command-line flags and environment variables.

All defaults live here. A flag wins over its environment twin; a bad value raises
ConfigError naming the setting, which `__main__` prints as one line before exiting.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8008
DEFAULT_THRESHOLD_MB = 100
DEFAULT_DOWNLOAD_CACHE_MAX_GB = 10.0
MAX_BODY_BYTES = 1024 * 1024


class ConfigError(ValueError):
    """A setting has a value the server cannot start with."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"invalid setting {setting}: {problem}")
        self.setting = setting


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archive-catalog"


@dataclass(frozen=True)
class Config:
    """Everything the server needs to know at start; tests build it directly."""

    models_dir: Path | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    cache_dir: Path = field(default_factory=default_cache_dir)
    redis_url: str | None = None
    auth_token: str | None = None
    public_url: str | None = None
    threshold_mb: int | None = DEFAULT_THRESHOLD_MB  # None means "auto"
    download_cache_max_gb: float = DEFAULT_DOWNLOAD_CACHE_MAX_GB
    workers: int = 1
    download_max_builds: int | None = None  # concurrent archive builds; None: 4 per core
    download_queue_wait_s: float = 10.0  # how long a build waits for a slot before 503
    watch_interval_s: float = 0.5
    demo: bool = False

    @property
    def index_backend(self) -> str:
        return "redis" if self.redis_url else "local"

    @property
    def download_cache_max_bytes(self) -> int:
        """GB as everywhere in this app and its README: 10^9 bytes (MB = 10^6)."""
        return int(self.download_cache_max_gb * 1_000_000_000)


# setting name -> (flag, environment variable, metavar, what it does and its default)
_SETTINGS: dict[str, tuple[str, str, str, str]] = {
    "models_dir": ("--models-dir", "MODELS_DIR", "DIR",
                   "the library folder (site/model/files); default: a small demo library made under the cache dir"),
    "host": ("--host", "HOST", "HOST", f"address to listen on (default {DEFAULT_HOST})"),
    "port": ("--port", "PORT", "PORT", f"port to listen on (default {DEFAULT_PORT})"),
    "cache_dir": ("--cache-dir", "CACHE_DIR", "DIR",
                  "thumbnails, archives, hashes, the demo library (default ~/.cache/archive-catalog)"),
    "redis_url": ("--redis-url", "REDIS_URL", "URL",
                  "share index, events and scans with other instances (default: none, embedded local index)"),
    "auth_token": ("--auth-token", "CATALOG_AUTH_TOKEN", "TOKEN",
                   "require 'Authorization: Bearer TOKEN' or the /login cookie on every route but /healthz"),
    "public_url": ("--public-url", "PUBLIC_URL", "URL",
                   "the URL people use behind a proxy (default: http:// + the Host header)"),
    "threshold_mb": ("--threshold-mb", "DOWNLOAD_CACHE_THRESHOLD_MB", "N|auto",
                     f"archives below N MB are built in memory, larger ones streamed (default {DEFAULT_THRESHOLD_MB})"),
    "download_cache_max_gb": ("--download-cache-max-gb", "DOWNLOAD_CACHE_MAX_GB", "N",
                              f"download cache bound in GB = 10^9 bytes (default {DEFAULT_DOWNLOAD_CACHE_MAX_GB:g})"),
    "workers": ("--workers", "WORKERS", "N", "processes sharing the port; more than 1 needs --redis-url (default 1)"),
    "download_max_builds": ("--download-max-builds", "DOWNLOAD_MAX_BUILDS", "N",
                            "archives built at once, others wait up to 10 s then get 503 (default 4 per core)"),
}  # fmt: skip


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError("command line", message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="archive-catalog",
        description="Self-hosted catalog server for a local media archive (site/model/files).",
        epilog="Each flag has an environment twin (shown in brackets); a flag wins over its variable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    for name, (flag, env, metavar, text) in _SETTINGS.items():
        parser.add_argument(flag, dest=name, default=None, metavar=metavar, help=f"{text} [{env}]")
    return parser


def package_version() -> str:
    try:
        return metadata.version("archive-catalog")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def help_text() -> str:
    return _parser().format_help()


def _raw_values(argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    flags = vars(_parser().parse_args(list(argv)))
    values: dict[str, str] = {}
    for name, (_flag, env, _metavar, _text) in _SETTINGS.items():
        value = flags.get(name)
        if value is None:
            value = environ.get(env)
        if value is not None:
            values[name] = value
    return values


def _label(name: str) -> str:
    flag, env, _metavar, _text = _SETTINGS[name]
    return f"{env} ({flag})"


def _int(name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ConfigError(_label(name), f"{text!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(_label(name), f"{value} is outside {low}..{high}")
    return value


def _positive_float(name: str, text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(_label(name), f"{text!r} is not a number") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(_label(name), f"{text!r} must be a positive number")
    return value


def _url(name: str, text: str, schemes: tuple[str, ...]) -> str:
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in schemes:
        raise ConfigError(_label(name), f"{text!r} must start with one of {', '.join(s + '://' for s in schemes)}")
    return text.rstrip("/")


def _directory(name: str, text: str, must_exist: bool) -> Path:
    if not text.strip() or "\x00" in text:
        raise ConfigError(_label(name), "must be a folder path")
    path = Path(text).expanduser().resolve()
    if must_exist and not path.is_dir():
        raise ConfigError(_label(name), f"{text!r} is not an existing folder")
    if not must_exist and path.exists() and not path.is_dir():
        raise ConfigError(_label(name), f"{text!r} exists and is not a folder")
    return path


def load_config(argv: Sequence[str], environ: Mapping[str, str]) -> Config:
    """Build the Config from flags and environment, validating every value."""
    raw = _raw_values(argv, environ)
    kwargs: dict[str, object] = {}
    if "models_dir" in raw:
        kwargs["models_dir"] = _directory("models_dir", raw["models_dir"], must_exist=True)
    else:
        kwargs["demo"] = True
    if "cache_dir" in raw:
        kwargs["cache_dir"] = _directory("cache_dir", raw["cache_dir"], must_exist=False)
    if "host" in raw:
        host = raw["host"].strip()
        if not host or any(c.isspace() for c in host):
            raise ConfigError(_label("host"), f"{raw['host']!r} is not a host name or address")
        kwargs["host"] = host
    if "port" in raw:
        kwargs["port"] = _int("port", raw["port"], 1, 65535)
    if "redis_url" in raw and raw["redis_url"].strip():
        kwargs["redis_url"] = _url("redis_url", raw["redis_url"].strip(), ("redis", "rediss", "unix"))
    if "auth_token" in raw:
        token = raw["auth_token"]
        if len(token) < 8 or any(c.isspace() for c in token):
            raise ConfigError(_label("auth_token"), "must be at least 8 characters without spaces")
        kwargs["auth_token"] = token
    if "public_url" in raw:
        kwargs["public_url"] = _url("public_url", raw["public_url"].strip(), ("http", "https"))
    if "threshold_mb" in raw:
        text = raw["threshold_mb"].strip().lower()
        kwargs["threshold_mb"] = None if text == "auto" else _int("threshold_mb", text, 1, 1_000_000)
    if "download_cache_max_gb" in raw:
        kwargs["download_cache_max_gb"] = _positive_float("download_cache_max_gb", raw["download_cache_max_gb"])
    if "workers" in raw:
        kwargs["workers"] = _int("workers", raw["workers"], 1, 64)
        if kwargs["workers"] != 1 and "redis_url" not in kwargs:
            raise ConfigError(
                _label("workers"), "more than one worker needs --redis-url (REDIS_URL) to act as one service"
            )
    if "download_max_builds" in raw:
        kwargs["download_max_builds"] = _int("download_max_builds", raw["download_max_builds"], 1, 1024)
    return Config(**kwargs)  # type: ignore[arg-type]
