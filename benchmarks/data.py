"""Benchmark data, generated once under DATA_DIR (outside the repo) and reused while the arguments
that made it are unchanged (a stamp file beside it): make_library.py libraries (the small
ordinary one: `ordinary_library`), make_duptree.py trees (`ensure_duptree`), the "mostly unique
sizes" scan tree (`unique_sizes_tree`) and files of random bytes; choosing a model folder of
ordinary media (`busiest_model`); and the page cache: `warm_page_cache`, `evict_page_cache`.

`BENCH_SCALE` (default 1) shrinks the big inputs for a smoke run — the media files, the
download libraries, the duptree, the unique-sizes tree — and gives them their own names
(`scaled_name`), so a smoke run never replaces the full-size data.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from .settings import DATA_DIR, PYTHON, generator

SCALE = float(os.environ.get("BENCH_SCALE", "1"))
# what the server lists and scans as media (server.library's image and video extensions)
MEDIA_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif", ".bmp", ".mp4", ".webm", ".mov", ".mkv", ".m4v", ".avi"}
)
DUPTREE_COUNTS = {"--files": 20_000, "--dup-groups": 2000, "--siblings": 200, "--decoy-sets": 400, "--empty": 40}
DUPTREE_HARDLINKS = 30
UNIQUE_SEED = 7
UNIQUE_GROUPS = 300  # exact-copy groups in the unique-sizes tree
UNIQUE_MAX_APPENDED = 4096  # random bytes appended to each copied file: 1 … this many


def scaled(count: int, minimum: int = 1) -> int:
    """`count` times BENCH_SCALE, at least `minimum`."""
    return max(minimum, round(count * SCALE))


def scaled_name(name: str) -> str:
    """The data folder's name at this scale: `name` at 1, `name-x0.05` at 0.05."""
    return name if SCALE == 1 else f"{name}-x{SCALE:g}"


def _generated(root: Path, wanted: str, make: Callable[[], object]) -> None:
    """Run `make` unless `root` exists with a stamp saying it was made from `wanted`."""
    stamp = root.with_name(root.name + ".args")
    if root.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return
    root.parent.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    print(f"generating {root} ({wanted}) …", file=sys.stderr, flush=True)
    make()
    stamp.write_text(wanted)


def ensure_library(name: str, *args: str) -> Path:
    """A library made by make_library.py with `args`, under DATA_DIR/name; reused when unchanged."""
    root = DATA_DIR / name
    command = [PYTHON, str(generator("make_library.py")), "--root", str(root), "--force", *args]
    _generated(root, " ".join(args), lambda: subprocess.run(command, check=True))
    return root


def ordinary_library() -> Path:
    """The small ordinary library every benchmark's second input comes from (bench_ab's "small":
    make_library.py --sites 3 --collections 60 --files 30 --extras --max-dim 320)."""
    return _catalog_library("small")


def catalog_library() -> Path:
    """The big catalog library (bench_ab's "big": 4 sites of 250 models of 40 files, ~39k files)."""
    return _catalog_library("big")


def _catalog_library(name: str) -> Path:
    from .bench_ab import LIBRARIES  # where the two catalog libraries are defined (it imports this module)

    folder, args = LIBRARIES[name]
    return ensure_library(folder, *args)


def library_truth(library: Path) -> list[list[str]]:
    """The duplicate groups make_library.py wrote to its manifest (paths relative to the library)."""
    manifest = json.loads(library.with_name(library.name + ".manifest.json").read_text())
    groups: list[list[str]] = manifest["duplicate_groups"]
    return groups


def ensure_duptree() -> tuple[Path, list[list[str]]]:
    """The make_duptree.py tree (seed 42; 20,000 entries, ~4 GB, at scale 1) and its duplicate
    groups (hard links counted once), relative to the tree."""
    root = DATA_DIR / scaled_name("duptree") / "tree"
    args = [f"{option}={scaled(count, 0)}" for option, count in DUPTREE_COUNTS.items()]
    args.append(f"--hardlinks={scaled(DUPTREE_HARDLINKS, 2)}")
    command = [PYTHON, str(generator("make_duptree.py")), "--root", str(root), "--force", *args]
    _generated(root, " ".join(args), lambda: subprocess.run(command, check=True))
    truth = json.loads(root.with_name(root.name + ".truth.json").read_text())
    groups: list[list[str]] = truth["groups_default"]
    return root, groups


def unique_sizes_tree() -> tuple[Path, list[list[str]]]:
    """A scan tree of mostly unique sizes (~6,000 files at scale 1) and its duplicate groups.

    Every media file of the ordinary library (not hidden, not a symlink) is copied to the same
    place with 1–4,096 random bytes appended, as many as give it a size no other copy has (the
    library's files share a few hundred sizes); then 300 of them get one exact copy (70 %) or
    two (30 %) in a random model folder: only those share a size. (A file directly in a site
    folder, which the scan skips, is copied but never in a group.)
    Deterministic (seed 7); the groups are written beside the tree.
    """
    source = ordinary_library()
    root = DATA_DIR / scaled_name("unique-sizes") / "tree"
    truth_path = root.with_name(root.name + ".truth.json")
    groups = scaled(UNIQUE_GROUPS)
    wanted = f"from {source}, seed {UNIQUE_SEED}, {groups} groups in model folders, unique sizes, scale {SCALE:g}"

    def make() -> None:
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        found = _copy_with_appended_bytes(source, partial, random.Random(UNIQUE_SEED), groups)
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
        truth_path.write_text(json.dumps({"groups_default": found}))

    _generated(root, wanted, make)
    truth: list[list[str]] = json.loads(truth_path.read_text())["groups_default"]
    return root, truth


def _copy_with_appended_bytes(source: Path, target: Path, rng: random.Random, groups: int) -> list[list[str]]:
    media = sorted(
        path.relative_to(source).as_posix()
        for path in source.rglob("*")
        if path.suffix.lower() in MEDIA_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(source).parts)
        and path.is_file()
        and not path.is_symlink()
    )
    if SCALE < 1:
        media = sorted(rng.sample(media, scaled(len(media), groups)))
    taken: set[int] = set()
    for relative in media:
        data = (source / relative).read_bytes()
        while (size := len(data) + rng.randint(1, UNIQUE_MAX_APPENDED)) in taken:
            pass  # another copy has that size: draw again (sizes end up unique)
        taken.add(size)
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(data + rng.randbytes(size - len(data)))
    in_models = [relative for relative in media if relative.count("/") >= 2]  # the scan skips loose site files
    folders = sorted({str(Path(relative).parent) for relative in in_models})
    found: list[list[str]] = []
    for number, original in enumerate(rng.sample(in_models, groups)):
        group = [original]
        for copy in range(1 if rng.random() < 0.7 else 2):
            name = f"copy{number:03d}-{copy}_{Path(original).name}"
            relative = f"{rng.choice(folders)}/{name}"
            shutil.copyfile(target / original, target / relative)
            group.append(relative)
        found.append(group)
    return found


def busiest_model(library: Path, suffixes: Iterable[str] = (".jpg", ".mp4")) -> tuple[str, str, list[Path]]:
    """The model folder (site, model) of `library` with the most files of `suffixes` directly in
    it (ties: the first by name), and those files sorted: a model's ordinary media."""
    wanted = {suffix.lower() for suffix in suffixes}
    best: tuple[str, str, list[Path]] | None = None
    for site in sorted(p for p in library.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for model in sorted(p for p in site.iterdir() if p.is_dir() and not p.name.startswith(".")):
            files = sorted(
                p
                for p in model.iterdir()
                if p.suffix.lower() in wanted and not p.name.startswith(".") and p.is_file() and not p.is_symlink()
            )
            if best is None or len(files) > len(best[2]):
                best = (site.name, model.name, files)
    if best is None or not best[2]:
        raise FileNotFoundError(f"no model folder with {sorted(wanted)} files in {library}")
    return best


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


def all_files(root: Path) -> list[str]:
    """Every file below `root` (os.walk: symlinks to folders not followed)."""
    found: list[str] = []
    for folder, _dirs, names in os.walk(root):
        found.extend(os.path.join(folder, name) for name in names)
    return found


def warm_page_cache(*paths: Path | str) -> None:
    """Read files once so the page cache holds them (benchmarks compare warm-cache serving)."""
    buffer = bytearray(8 * 1024 * 1024)
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            while handle.readinto(buffer):
                pass


def evict_page_cache(paths: Sequence[str]) -> None:
    """Drop the files' data from the page cache (their metadata stays cached): a cold read."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # a dangling or escaping symlink in a test tree
            continue
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
