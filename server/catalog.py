"""The catalog service: cached, always-fresh JSON listings of sites, models and media.

Four caches (the contract's three plus a per-site walk index) hold *rendered* bodies or the
walks behind them. Freshness: a model's listing is checked against its folder's mtime on each
request (a file added shows up in the very next response) and carries the watcher's folder
generation (a file rewritten in place is seen within a sweep); site listings carry the watcher
generation they were built at (one dict lookup per request, changes seen within a sweep).
Search across sites (`search`) answers from the same site walks for model names and from a
bounded per-site file-name index (`file_index`, built from the walk's models on first use,
fresh by the same site generation) for file names.
A library root that is gone answers 503 `library_unavailable` on every route: from the
watcher's flag on the hot path, and from the disk whenever a listing is (re)computed.
No aiohttp here: handlers turn a `Rendered` into a response.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

from server.cache.freshness import ROOT_KEY, FolderWatcher
from server.cache.ttl import TTLCache
from server.infra.representation import Rendered, render
from server.library import (
    RACY_WINDOW_NS,
    FolderListing,
    Library,
    MediaFile,
    ModelSummary,
    SiteListing,
    library_unavailable,
    search_fold,
)

MODEL_SORTS = ("name", "files", "bytes", "mtime")
SITES_KEY = "\x00sites"
SEARCH_KEY = "\x00search"
FILE_INDEX_SUFFIX = "\x00files"  # site_index_cache key of a site's file index (a site name holds no NUL)
MAX_INDEXED_FILES = 100_000  # per site: a bigger site's file search says it is incomplete


@dataclass(frozen=True, slots=True)
class ModelsQuery:
    site: str
    page: int = 1
    limit: int = 50
    sort: str = "name"
    order: str = "asc"
    q: str = ""


@dataclass(frozen=True, slots=True)
class ModelQuery:
    site: str
    model: str
    offset: int = 0
    images_limit: int | None = None
    videos_limit: int | None = None


@dataclass(frozen=True, slots=True)
class SearchQuery:
    q: str
    limit: int = 50


@dataclass(frozen=True, slots=True)
class IndexedFile:
    model: str
    file: MediaFile
    folded: str  # search_fold of the file name, computed once per index


@dataclass(frozen=True, slots=True)
class FileIndex:
    """The media file names of one site (model by model, natural order), at most MAX_INDEXED_FILES."""

    site: str
    files: tuple[IndexedFile, ...]
    complete: bool


@dataclass(frozen=True, slots=True)
class GenerationStamped:
    """A value that is fresh while its watcher generation is unchanged."""

    value: Any
    site: str
    generation: int


@dataclass(frozen=True, slots=True)
class FolderStamped:
    """A value that is fresh while its folder's mtime and folder generation are unchanged
    (and the folder was not racy)."""

    value: Any
    folder: str
    mtime_ns: int
    racy: bool
    generation: int
    identity: tuple[int, int]  # the folder's (st_dev, st_ino) when read


def media_url(prefix: str, site: str, model: str, name: str) -> str:
    return f"/{prefix}/{quote(site, safe='')}/{quote(model, safe='/')}/{quote(name, safe='')}"


def _media_json(site: str, model: str, item: MediaFile) -> dict[str, Any]:
    return {
        "path": item.name,
        "size": item.size,
        "mtime": item.mtime,
        "url": media_url("media", site, model, item.name),
        "thumbnail": media_url("thumb", site, model, item.name),
    }


def _model_json(site: str, summary: ModelSummary) -> dict[str, Any]:
    return {
        "name": summary.name,
        "images": summary.images,
        "videos": summary.videos,
        "files": summary.images + summary.videos,
        "bytes": summary.bytes,
        "mtime": summary.mtime,
        "thumbnail": media_url("thumb", site, summary.name, summary.cover) if summary.cover else None,
    }


_SORT_KEYS: dict[str, Callable[[ModelSummary], Any]] = {
    "files": lambda m: m.images + m.videos,
    "bytes": lambda m: m.bytes,
    "mtime": lambda m: m.mtime,
}


def select_models(listing: SiteListing, query: ModelsQuery) -> tuple[int, list[ModelSummary]]:
    """Filter, sort and page a site's models (the walk is already in natural name order)."""
    models = list(listing.models)
    if query.q:
        needle = search_fold(query.q)
        models = [m for m in models if needle in search_fold(m.name)]
    if query.sort == "name":
        if query.order == "desc":
            models.reverse()
    else:
        # stable sort keeps natural name order among equal keys, in both directions
        models.sort(key=_SORT_KEYS[query.sort], reverse=query.order == "desc")
    start = (query.page - 1) * query.limit
    return len(models), models[start : start + query.limit]


class Catalog:
    def __init__(self, library: Library, watcher: FolderWatcher, clock: Callable[[], float] = time.monotonic) -> None:
        self.library = library
        self.watcher = watcher
        self.models_cache: TTLCache[tuple[Any, ...], GenerationStamped] = TTLCache("models_cache", 500, clock=clock)
        self.model_info_cache: TTLCache[ModelQuery, FolderStamped] = TTLCache("model_info_cache", 2000, clock=clock)
        self.media_list_cache: TTLCache[tuple[str, str], FolderStamped] = TTLCache(
            "media_list_cache", 1000, clock=clock
        )
        self.site_index_cache: TTLCache[str, GenerationStamped] = TTLCache("site_index_cache", 500, clock=clock)
        self.walks = 0  # site walks done (/metrics: site_walks)

    @property
    def caches(self) -> tuple[TTLCache[Any, Any], ...]:
        return (self.models_cache, self.model_info_cache, self.media_list_cache, self.site_index_cache)

    # -- freshness ----------------------------------------------------------------------

    def require_available(self) -> None:
        """A 503 while the library's root is missing (an unmounted drive)."""
        if not self.watcher.available:
            raise library_unavailable()

    def _generation_fresh(self, stamped: GenerationStamped) -> bool:
        if stamped.site == SITES_KEY:
            return stamped.generation == self.watcher.total_generation
        return stamped.generation == self.watcher.generation(stamped.site)

    def _folder_fresh(self, stamped: FolderStamped) -> bool:
        if stamped.racy or stamped.generation != self.watcher.folder_generation(stamped.folder):
            return False
        try:
            info = os.stat(stamped.folder)
        except OSError:
            return False
        # the same directory (not one put in its place, as a copy with its mtime), unchanged
        return info.st_mtime_ns == stamped.mtime_ns and (info.st_dev, info.st_ino) == stamped.identity

    @staticmethod
    def _not_racy(stamped: FolderStamped) -> bool:
        return not stamped.racy

    # -- site walks ---------------------------------------------------------------------

    async def site_listing(self, site: str) -> SiteListing:
        self.require_available()

        async def walk() -> GenerationStamped:
            generation = self.watcher.generation(site)
            listing = await asyncio.to_thread(self.library.walk_site, site)
            self.walks += 1
            self.watcher.track(site, listing.folders)
            return GenerationStamped(listing, site, generation)

        stamped = await self.site_index_cache.get_or_compute(site, walk, self._generation_fresh)
        listing: SiteListing = stamped.value
        return listing

    async def file_index(self, site: str) -> FileIndex:
        """The site's file names, read model folder by model folder from the walk's models.

        Cold cost: the walk (if not cached) plus one scandir and one stat per media file of
        the site, in a thread, once per site generation.
        """
        self.require_available()
        key = site + FILE_INDEX_SUFFIX

        async def build() -> GenerationStamped:
            generation = self.watcher.generation(site)
            listing = await self.site_listing(site)
            index = await asyncio.to_thread(self._read_file_index, listing)
            return GenerationStamped(index, site, generation)

        stamped = await self.site_index_cache.get_or_compute(key, build, self._generation_fresh)
        index: FileIndex = stamped.value
        return index

    def _read_file_index(self, listing: SiteListing) -> FileIndex:
        site_path = self.library.site_dir(listing.site)
        files: list[IndexedFile] = []
        for summary in listing.models:
            try:
                folder = self.library.list_folder(site_path / summary.name)
            except OSError:  # gone since the walk: the watcher bumps the site and a search rebuilds
                continue
            for item in (*folder.images, *folder.videos):
                if len(files) == MAX_INDEXED_FILES:
                    return FileIndex(listing.site, tuple(files), complete=False)
                files.append(IndexedFile(summary.name, item, search_fold(item.name)))
        return FileIndex(listing.site, tuple(files), complete=True)

    # -- rendered responses -------------------------------------------------------------

    async def sites(self) -> Rendered:
        self.require_available()

        async def build() -> GenerationStamped:
            generation = self.watcher.total_generation
            names, root_mtime = await asyncio.to_thread(self._site_names_and_root_mtime)
            self.watcher.track_root(root_mtime)
            listings = [await self.site_listing(name) for name in names]
            body = {
                "sites": [
                    {"name": s.site, "models": len(s.models), "files": s.files, "bytes": s.bytes} for s in listings
                ]
            }
            return GenerationStamped(render(body), SITES_KEY, generation)

        stamped = await self.models_cache.get_or_compute((SITES_KEY,), build, self._generation_fresh)
        rendered: Rendered = stamped.value
        return rendered

    def _site_names_and_root_mtime(self) -> tuple[list[str], int]:
        mtime_ns = self.library.root_mtime_ns()
        racy = time.time_ns() - mtime_ns < RACY_WINDOW_NS
        return self.library.site_names(), -1 if racy else mtime_ns

    async def models(self, query: ModelsQuery) -> Rendered:
        self.require_available()
        key = (query.site, query.page, query.limit, query.sort, query.order, query.q)  # the body echoes q as given
        hit = self.models_cache.lookup(key, self._generation_fresh)
        if hit is not None:  # the hot path: no closure, no extra coroutine
            cached: Rendered = hit.value
            return cached

        async def build() -> GenerationStamped:
            generation = self.watcher.generation(query.site)
            listing = await self.site_listing(query.site)
            total, page = select_models(listing, query)
            body = {
                "site": query.site,
                "page": query.page,
                "limit": query.limit,
                "total": total,
                "pages": (total + query.limit - 1) // query.limit,
                "sort": query.sort,
                "order": query.order,
                "q": query.q,
                "models": [_model_json(query.site, m) for m in page],
            }
            return GenerationStamped(render(body), query.site, generation)

        stamped = await self.models_cache.compute_once(key, build)
        rendered: Rendered = stamped.value
        return rendered

    async def search(self, query: SearchQuery) -> Rendered:
        """Models (by name) and media files (by file name) of every site matching `q`."""
        self.require_available()
        key = (SEARCH_KEY, query.q, query.limit)
        hit = self.models_cache.lookup(key, self._generation_fresh)
        if hit is not None:
            cached: Rendered = hit.value
            return cached

        async def build() -> GenerationStamped:
            generation = self.watcher.total_generation
            names, root_mtime = await asyncio.to_thread(self._site_names_and_root_mtime)
            self.watcher.track_root(root_mtime)
            needle = search_fold(query.q)
            models: list[dict[str, Any]] = []
            files: list[dict[str, Any]] = []
            total_models = total_files = 0
            complete = True
            for site in names:
                listing = await self.site_listing(site)
                for summary in listing.models:
                    if needle in search_fold(summary.name):
                        total_models += 1
                        if len(models) < query.limit:
                            models.append({"site": site, **_model_json(site, summary)})
                index = await self.file_index(site)
                complete = complete and index.complete
                for entry in index.files:
                    if needle in entry.folded:
                        total_files += 1
                        if len(files) < query.limit:
                            files.append({"site": site, "model": entry.model, "kind": entry.file.kind,
                                          **_media_json(site, entry.model, entry.file)})  # fmt: skip
            body = {
                "q": query.q,
                "limit": query.limit,
                "total_models": total_models,
                "total_files": total_files,
                "complete": complete,
                "models": models,
                "files": files,
            }
            return GenerationStamped(render(body), SITES_KEY, generation)

        stamped = await self.models_cache.compute_once(key, build)
        rendered: Rendered = stamped.value
        return rendered

    async def folder(self, site: str, model: str) -> FolderListing:
        """The media of one model folder, re-read whenever the folder or one of its files changed."""
        stamped = await self._folder_stamped(site, model)
        listing: FolderListing = stamped.value
        return listing

    async def _folder_stamped(self, site: str, model: str) -> FolderStamped:
        self.require_available()
        key = (site, model)
        hit = self.media_list_cache.lookup(key, self._folder_fresh)
        if hit is not None:  # the hot path (a site's download asks for each model): no closure
            return hit

        async def read() -> FolderStamped:
            listing = await asyncio.to_thread(self.library.read_model, site, model)
            folder = str(listing.path)
            # the watcher compares the disk with what this listing saw, so a file rewritten
            # during or after the read bumps the generation taken here
            files = {os.path.join(folder, f.name): (f.size, f.mtime) for f in (*listing.images, *listing.videos)}
            self.watcher.track_files(site, folder, files)
            generation = self.watcher.folder_generation(folder)
            return FolderStamped(listing, folder, listing.mtime_ns, listing.racy, generation, listing.identity)

        return await self.media_list_cache.compute_once(key, read, cacheable=self._not_racy)

    async def model(self, query: ModelQuery) -> Rendered:
        self.require_available()
        hit = self.model_info_cache.lookup(query, self._folder_fresh)
        if hit is not None:  # the hot path: no closure, no extra coroutine
            cached: Rendered = hit.value
            return cached

        async def build() -> FolderStamped:
            stamped = await self._folder_stamped(query.site, query.model)
            listing: FolderListing = stamped.value
            images = _window(listing.images, query.offset, query.images_limit)
            videos = _window(listing.videos, query.offset, query.videos_limit)
            body = {
                "site": query.site,
                "model": query.model,
                "total_images": len(listing.images),
                "total_videos": len(listing.videos),
                "bytes": listing.bytes,
                "mtime": listing.mtime,
                "offset": query.offset,
                "images": [_media_json(query.site, query.model, f) for f in images],
                "videos": [_media_json(query.site, query.model, f) for f in videos],
            }
            return replace(stamped, value=render(body))

        stamped = await self.model_info_cache.compute_once(query, build, cacheable=self._not_racy)
        rendered: Rendered = stamped.value
        return rendered

    # -- invalidation -------------------------------------------------------------------

    def invalidate(self, site: str, model: str | None = None) -> None:
        """Drop everything that could show `site`/`model` (after a delete or restore)."""
        if model is None:
            self.model_info_cache.invalidate_where(lambda q: q.site == site)
            self.media_list_cache.invalidate_where(lambda k: k[0] == site)
        else:
            prefix = model + "/"
            self.model_info_cache.invalidate_where(
                lambda q: q.site == site and (q.model == model or q.model.startswith(prefix))
            )
            self.media_list_cache.invalidate_where(
                lambda k: k[0] == site and (k[1] == model or k[1].startswith(prefix))
            )
        self.watcher.bump(site)
        self.watcher.bump(ROOT_KEY)

    def clear(self) -> None:
        for cache in self.caches:
            cache.clear()

    def sweep(self) -> int:
        return sum(cache.sweep() for cache in self.caches)

    def stats(self) -> dict[str, dict[str, float | int]]:
        return {cache.name: cache.stats() for cache in self.caches}


def _window(items: tuple[MediaFile, ...], offset: int, limit: int | None) -> tuple[MediaFile, ...]:
    return items[offset : None if limit is None else offset + limit]
