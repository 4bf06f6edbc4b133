"""Settings from flags and environment; bad values stop the start with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from server.config import ConfigError, load_config
from server.demo import ensure_demo_library
from server.infra.sizes import human_bytes
from server.library import Library


def test_defaults_without_library_mean_demo(tmp_path: Path) -> None:
    config = load_config([], {"CACHE_DIR": str(tmp_path)})
    assert config.demo and config.models_dir is None
    assert (config.host, config.port, config.threshold_mb, config.index_backend) == ("127.0.0.1", 8008, 100, "local")


def test_flag_wins_over_environment(tmp_path: Path) -> None:
    config = load_config(
        ["--port", "9001", "--models-dir", str(tmp_path)],
        {"PORT": "9000", "MODELS_DIR": "/nonexistent", "DOWNLOAD_CACHE_THRESHOLD_MB": "auto"},
    )
    assert config.port == 9001
    assert config.models_dir == tmp_path.resolve()
    assert config.threshold_mb is None  # auto


def test_environment_twins_are_read(tmp_path: Path) -> None:
    environ = {
        "MODELS_DIR": str(tmp_path),
        "HOST": "0.0.0.0",
        "CACHE_DIR": str(tmp_path / "c"),
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "CATALOG_AUTH_TOKEN": "s3cret-token",
        "DOWNLOAD_CACHE_THRESHOLD_MB": "5",
        "DOWNLOAD_CACHE_MAX_GB": "0.5",
    }
    config = load_config([], environ)
    assert config.host == "0.0.0.0"
    assert config.redis_url == "redis://127.0.0.1:6379/0" and config.index_backend == "redis"
    assert config.auth_token == "s3cret-token"
    assert config.threshold_mb == 5
    assert config.download_cache_max_bytes == 500_000_000  # GB = 10^9 bytes, as MB = 10^6


@pytest.mark.parametrize(
    ("argv", "environ", "named"),
    [
        (["--port", "http"], {}, "PORT"),
        (["--port", "70000"], {}, "PORT"),
        ([], {"PORT": "-1"}, "PORT"),
        (["--threshold-mb", "0"], {}, "DOWNLOAD_CACHE_THRESHOLD_MB"),
        ([], {"DOWNLOAD_CACHE_THRESHOLD_MB": "lots"}, "DOWNLOAD_CACHE_THRESHOLD_MB"),
        (["--download-cache-max-gb", "-3"], {}, "DOWNLOAD_CACHE_MAX_GB"),
        (["--download-cache-max-gb", "nan"], {}, "DOWNLOAD_CACHE_MAX_GB"),
        (["--models-dir", "/definitely/not/here"], {}, "MODELS_DIR"),
        (["--redis-url", "localhost:6379"], {}, "REDIS_URL"),
        (["--public-url", "example.org"], {}, "PUBLIC_URL"),
        (["--auth-token", "short"], {}, "CATALOG_AUTH_TOKEN"),
        (["--host", ""], {}, "HOST"),
        (["--no-such-flag"], {}, "command line"),
    ],
)
def test_bad_values_name_the_setting(argv: list[str], environ: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(argv, environ)
    assert named in str(caught.value)


def test_bad_setting_stops_start_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "server", "--port", "eighty"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "CACHE_DIR": str(tmp_path)},
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PORT" in lines[0] and "eighty" in lines[0]
    assert "Traceback" not in result.stderr


def test_demo_library_has_real_images(tmp_path: Path) -> None:
    root = ensure_demo_library(tmp_path)
    library = Library(root)
    sites = library.site_names()
    assert len(sites) == 2
    listing = library.walk_site(sites[1])
    assert any("/" in model.name for model in listing.models), "a nested gallery-dl style model"
    images = list(root.rglob("*.jpg"))
    assert images
    with Image.open(images[0]) as image:
        image.verify()
    assert ensure_demo_library(tmp_path) == root  # made once


@pytest.mark.parametrize(
    ("count", "text"), [(0, "0 B"), (999, "999 B"), (1000, "1.00 KB"), (1_000_000, "1.00 MB"), (45_500_000, "45.50 MB")]
)
def test_human_bytes(count: int, text: str) -> None:
    assert human_bytes(count) == text


def test_workers_need_redis() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(["--workers", "2"], {})
    assert "WORKERS" in str(caught.value) and "redis" in str(caught.value).lower()
    assert load_config(["--workers", "2", "--redis-url", "redis://127.0.0.1:6379"], {}).workers == 2


@pytest.mark.parametrize(
    ("host", "token", "warned"),
    [
        ("127.0.0.1", None, False),
        ("127.0.0.2", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("0.0.0.0", None, True),
        ("192.168.1.10", None, True),
        ("nas.local", None, True),
        ("0.0.0.0", "long-enough-token", False),
    ],
)
def test_exposure_warning(host: str, token: str | None, warned: bool) -> None:
    from server.__main__ import exposure_warning
    from server.config import Config

    warning = exposure_warning(Config(host=host, auth_token=token))
    assert (warning is not None) is warned
    if warning:
        assert "--auth-token" in warning
