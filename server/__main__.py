"""`python -m server` / `archive-catalog`: parse settings, print the banner, run the app."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import shlex
import sys

from server.config import Config, ConfigError, load_config
from server.demo import ensure_demo_library
from server.infra.cluster import redact
from server.infra.sizes import folder_size, human_bytes
from server.serve import run_workers, serve

log = logging.getLogger("archive_catalog")


def exposure_warning(config: Config) -> str | None:
    """A warning when the server is reachable from other machines with no token."""
    if config.auth_token or config.host == "localhost":
        return None
    try:
        if ipaddress.ip_address(config.host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: assume it can be reached from elsewhere
    return f"listening on {config.host} without --auth-token: anyone who can reach it can read and delete"


def banner(config: Config) -> str:
    url = config.public_url or f"http://{config.host}:{config.port}/"
    lines = [
        "archive-catalog is running",
        f"  url:      {url}",
        f"  library:  {config.models_dir}{'  (demo library)' if config.demo else ''}",
        f"  cache:    {config.cache_dir}",
        f"  index:    {config.index_backend}" + (f" ({redact(config.redis_url)})" if config.redis_url else ""),
        f"  workers:  {config.workers}",
    ]
    if config.demo and config.models_dir is not None:
        lines[2] += f", {human_bytes(folder_size(config.models_dir))}"
        lines += [
            f"  The demo library was generated in {config.models_dir}",
            "  (remove it with: rm -r " + shlex.quote(str(config.models_dir)) + "); serve your own archive with",
            "  --models-dir /path/to/archive (or MODELS_DIR).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        print(f"archive-catalog: {exc}", file=sys.stderr)
        return 2
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    if config.models_dir is None:
        config = dataclasses.replace(config, models_dir=ensure_demo_library(config.cache_dir))
    warning = exposure_warning(config)
    if warning:
        log.warning(warning)
    print(banner(config), flush=True)
    if config.workers == 1:
        serve(config)
        return 0
    return run_workers(config)


if __name__ == "__main__":
    sys.exit(main())
