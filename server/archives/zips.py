"""Stored ZIP archives as plans: local headers, data descriptors, central directory, zip64."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from server.archives.plans import ArchivePlan, CrcJob, Deferred, FileIdentity, FileSpan, Part

ZIP_LIMIT = 0xFFFFFFFF
ZIP_COUNT_LIMIT = 0xFFFF


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One stored member: its name in the archive, its content and modification time."""

    name: str
    size: int
    mtime: float
    parts: tuple[Part, ...]
    identity: FileIdentity | None = None


def file_entry(name: str, path: str) -> ZipEntry:
    """A ZIP member holding one whole file (stat now: the plan uses its exact size)."""
    info = os.stat(path)
    identity = FileIdentity(path, info.st_size, info.st_mtime_ns, info.st_ino)
    return ZipEntry(name, info.st_size, info.st_mtime, (FileSpan(path, 0, info.st_size),), identity)


def _dos_datetime(mtime: float) -> tuple[int, int]:
    t = time.gmtime(max(mtime, 315532800))  # DOS dates start in 1980
    year = min(t.tm_year, 2107)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


@dataclass(frozen=True, slots=True)
class _Placed:
    entry: ZipEntry
    name: bytes
    offset: int
    zip64: bool  # sizes need zip64 (local extra, 8-byte descriptor)
    dos_time: int
    dos_date: int


_FLAGS = 0x0808  # bit 3: data descriptor; bit 11: UTF-8 names
_MADE_BY = (3 << 8) | 45  # Unix, spec 4.5
_EXTERNAL_ATTR = (0o100644 << 16) & 0xFFFFFFFF


def _timestamp(p: _Placed) -> bytes:
    """The "UT" extra field: the exact mtime in UTC, so unzip restores it whatever the time zone
    (the DOS date and time fields hold the same moment in UTC, to keep archives deterministic)."""
    return struct.pack("<HHBI", 0x5455, 5, 1, min(max(int(p.entry.mtime), 0), 0xFFFFFFFF))


def _local_header(p: _Placed) -> bytes:
    size = p.entry.size
    extra = (struct.pack("<HHQQ", 1, 16, size, size) if p.zip64 else b"") + _timestamp(p)
    stored = ZIP_LIMIT if p.zip64 else size
    header = struct.pack(
        "<IHHHHHIIIHH",
        0x04034B50,
        45 if p.zip64 else 20,
        _FLAGS,
        0,
        p.dos_time,
        p.dos_date,
        0,
        stored,
        stored,
        len(p.name),
        len(extra),
    )
    return header + p.name + extra


def _descriptor_length(p: _Placed) -> int:
    return 24 if p.zip64 else 16


def _descriptor(p: _Placed, crc: int) -> bytes:
    if p.zip64:
        return struct.pack("<IIQQ", 0x08074B50, crc, p.entry.size, p.entry.size)
    return struct.pack("<IIII", 0x08074B50, crc, p.entry.size, p.entry.size)


def _descriptor_renderer(p: _Placed, index: int) -> Callable[[Sequence[int]], bytes]:
    def render(crcs: Sequence[int]) -> bytes:
        return _descriptor(p, crcs[index])

    return render


def _central_fields(p: _Placed, force: bool) -> tuple[int, int, bytes]:
    size, offset = p.entry.size, p.offset
    values: list[int] = []
    if force or size >= ZIP_LIMIT:
        values += [size, size]
        size = ZIP_LIMIT
    if force or offset >= ZIP_LIMIT:
        values.append(offset)
        offset = ZIP_LIMIT
    extra = struct.pack(f"<HH{len(values)}Q", 1, 8 * len(values), *values) if values else b""
    return size, offset, extra


def _central_header(p: _Placed, crc: int, force: bool) -> bytes:
    size, offset, zip64_extra = _central_fields(p, force)
    extra = zip64_extra + _timestamp(p)
    header = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        _MADE_BY,
        45 if (p.zip64 or zip64_extra) else 20,
        _FLAGS,
        0,
        p.dos_time,
        p.dos_date,
        crc,
        size,
        size,
        len(p.name),
        len(extra),
        0,
        0,
        0,
        _EXTERNAL_ATTR,
        offset,
    )
    return header + p.name + extra


def _central_length(p: _Placed, force: bool) -> int:
    return 46 + len(p.name) + len(_central_fields(p, force)[2]) + 9


def _end_records(count: int, cd_offset: int, cd_size: int, force: bool) -> bytes:
    zip64 = force or count >= ZIP_COUNT_LIMIT or cd_offset >= ZIP_LIMIT or cd_size >= ZIP_LIMIT
    out = b""
    if zip64:
        eocd64_offset = cd_offset + cd_size
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, _MADE_BY, 45, 0, 0, count, count, cd_size, cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1)
    out += struct.pack(
        "<IHHHHIIH",
        0x06054B50,
        0,
        0,
        ZIP_COUNT_LIMIT if zip64 else count,
        ZIP_COUNT_LIMIT if zip64 else count,
        ZIP_LIMIT if zip64 else cd_size,
        ZIP_LIMIT if zip64 else cd_offset,
        0,
    )
    return out


def zip_plan(entries: Sequence[ZipEntry], force_zip64: bool = False) -> ArchivePlan:
    """A stored ZIP of `entries`, its exact size known now; CRCs come as the data is sent."""
    parts: list[Part] = []
    jobs: list[CrcJob] = []
    placed: list[_Placed] = []
    offset = 0
    for entry in entries:
        dos_time, dos_date = _dos_datetime(entry.mtime)
        p = _Placed(
            entry, entry.name.encode("utf-8"), offset, force_zip64 or entry.size >= ZIP_LIMIT, dos_time, dos_date
        )
        placed.append(p)
        header = _local_header(p)
        parts.append(header)
        parts.extend(entry.parts)
        index = len(jobs)
        jobs.append(CrcJob(entry.parts, entry.identity))
        parts.append(Deferred(index + 1, _descriptor_length(p), _descriptor_renderer(p, index)))
        offset += len(header) + entry.size + _descriptor_length(p)
    cd_size = sum(_central_length(p, force_zip64) for p in placed)
    tail_length = cd_size + len(_end_records(len(placed), offset, cd_size, force_zip64))
    cd_offset, count = offset, len(placed)

    def central_directory(crcs: Sequence[int]) -> bytes:
        body = b"".join(_central_header(p, crcs[i], force_zip64) for i, p in enumerate(placed))
        return body + _end_records(count, cd_offset, cd_size, force_zip64)

    parts.append(Deferred(len(jobs), tail_length, central_directory))
    return ArchivePlan(parts, offset + tail_length, "application/zip", jobs)
