"""Similar images for the HTTP layer: the groups at a threshold, and moving copies to the trash.

`SimilarImages` answers `GET /api/similar` from the last similar scan (`SimilarResults`,
grouped on request at the threshold asked for), and carries out deletes and bulk resolutions:
every path must be in one group of that scan at the threshold given, unchanged on disk since
the scan (size, mtime, inode: else 409 `changed`), and the kept copy is never among those
moved, so the last copy is never removed. Moving to the trash (restorable), telling
`library.changed` and forgetting the moved paths from every cache and result is the scan
service's `move_to_trash`, shared with the duplicates. Pure domain code: no aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from server.errors import BadRequest, Conflict, NotFound
from server.library import Library
from server.scan.results import Group, Moved, Plan, Resolution
from server.similar import index, phash
from server.similar.results import Grouping, SimilarResults, SimilarScan

RULES = ("largest_dimensions", "in_site")


class SimilarImages:
    def __init__(
        self,
        library: Library,
        results: SimilarResults,
        move_to_trash: Callable[[list[str]], Awaitable[Moved]],
        scanning: Callable[[], bool],
    ) -> None:
        self.library = library
        self.results = results
        self._move_to_trash = move_to_trash
        self._scanning = scanning

    def refresh(self) -> None:
        """Read the results again if another instance rewrote them (blocking; not while a scan
        runs here: it is about to replace them)."""
        if not self._scanning():
            self.results.refresh()

    async def listing(self, threshold: int, offset: int = 0, limit: int | None = None) -> dict[str, Any]:
        """The `GET /api/similar` body: groups at `threshold`, `offset`/`limit` of them."""
        scan = self.results.require()
        grouping = await self.results.grouping(threshold)
        end = None if limit is None else offset + limit
        return {
            "scan_id": scan.scan_id,
            "finished_at": scan.finished_at,
            "threshold": threshold,
            "default_threshold": phash.DEFAULT_THRESHOLD,
            "max_threshold": index.MAX_THRESHOLD,
            "stats": scan.stats,
            "total_groups": len(grouping.groups),
            "total_wasted": grouping.total_wasted,
            "offset": offset,
            "groups": grouping.groups[offset:end],
        }

    async def delete(self, keep: str, delete: list[str], threshold: int) -> dict[str, Any]:
        """Move `delete` to the trash, once each is checked to share a group with `keep`."""
        if not delete:
            raise BadRequest("'delete' must list at least one path.")
        if keep in delete:
            raise Conflict("'keep' is among the files to delete: that would remove every copy.", code="keep_in_delete")
        scan = self.results.require()
        grouping = await self.results.grouping(threshold)
        group = grouping.group_of.get(keep)
        strangers = [path for path in delete if group is None or grouping.group_of.get(path) != group]
        if strangers:
            raise Conflict(
                f"{strangers[0]!r} is not in one group with {keep!r} at threshold {threshold}; nothing was moved.",
                code="not_in_group",
            )
        targets = await self._verified(scan, keep, delete)
        moved = await self._move_to_trash(targets)
        return {"deleted": moved["deleted"], "freed": moved["bytes"], "items": moved["items"]}

    async def resolve(
        self, rule: str, groups: list[str] | None, *, site: str | None, threshold: int, dry_run: bool
    ) -> dict[str, Any]:
        """Keep one copy per chosen group by `rule` (`largest_dimensions`: the best copy, first
        in the group; `in_site`: the best copy under `site`) and, unless `dry_run`, move the
        others to the trash group by group: a group that changed since the scan is left alone
        and listed in `changed`; 409 if that is every group."""
        if self._scanning():
            raise Conflict("A scan is running; resolve the groups when it has finished.", code="scan_running")
        scan = self.results.require()
        grouping = await self.results.grouping(threshold)
        resolution = plan_resolution(grouping, rule, groups, site)
        if dry_run:
            return resolution.preview()

        async def verify(keep: str, delete: list[str]) -> list[str]:
            return await self._verified(scan, keep, delete)

        return await resolution.carry_out(verify, self._move_to_trash, all_changed_code="changed")

    async def _verified(self, scan: SimilarScan, keep: str, delete: list[str]) -> list[str]:
        """`delete` without repeats, once `keep` and each of them is checked to be the file the
        scan saw (never `keep` itself through a link)."""
        targets = list(dict.fromkeys(delete))
        await asyncio.to_thread(self._check_unchanged, scan, keep, targets)
        return targets

    def _check_unchanged(self, scan: SimilarScan, keep: str, targets: list[str]) -> None:
        """Raise 409 `changed` unless every file is as the scan saw it (blocking)."""
        identities = {}
        for path in [keep, *targets]:
            record = scan.record(path)
            try:
                info = self.library.media_path(path).stat()
            except (NotFound, FileNotFoundError):
                raise Conflict(f"{path!r} is no longer in the library; nothing was moved.", code="changed") from None
            if record is None or (info.st_size, info.st_mtime_ns, info.st_ino) != (
                record.size,
                record.mtime_ns,
                record.inode,
            ):
                raise Conflict(f"{path!r} changed since the scan; nothing was moved. Scan again.", code="changed")
            identities[path] = (info.st_dev, info.st_ino)
        for path in targets:
            if identities[path] == identities[keep]:
                raise Conflict(
                    f"{path!r} is the same file as {keep!r} (a link); deleting it would remove every copy.",
                    code="same_file",
                )


def plan_resolution(grouping: Grouping, rule: str, chosen: list[str] | None, site: str | None) -> Resolution:
    """Per chosen group (None: all, in the listing's order): the copy `rule` keeps, the others."""
    prefix = f"{site}/"

    def plan_of(group: Group) -> Plan | None:
        files = group["files"]
        if rule == "in_site":
            keep = next((file for file in files if file["path"].startswith(prefix)), None)
        else:
            keep = files[0]  # largest_dimensions: the listing's best copy
        if keep is None:
            return None
        others = [file for file in files if file is not keep]
        delete = [file["path"] for file in others]
        return {"keep": keep["path"], "delete": delete, "bytes": sum(file["size"] for file in others)}

    return Resolution.build(grouping.groups, chosen, plan_of, f"no_copy_{rule}")
