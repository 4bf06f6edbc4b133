"""Archive plans checked by real readers: zipfile (testzip), `unzip -t`, pypdf, pdfinfo."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pypdf
import pytest
from PIL import Image

from server.archives import pdfs
from server.archives.plans import ArchiveSourceChanged, CrcCache, Deferred, FileSpan, part_length, render_bytes
from server.archives.zips import file_entry, zip_plan

from .helpers import jpeg_bytes, png_bytes, write


def unzip_test(data: bytes | bytearray, tmp_path: Path) -> str:
    path = tmp_path / "t.zip"
    path.write_bytes(data)
    result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    src = tmp_path / "src"
    made = [write(src / f"f{i}.jpg", jpeg_bytes(i), mtime=1_700_000_000 + i) for i in range(3)]
    made.append(write(src / "empty.mp4", b"", mtime=1_600_000_000))
    made.append(write(src / "noise.bin", os.urandom(300_000)))
    return made


@pytest.mark.parametrize("force_zip64", [False, True])
def test_stored_zip_is_read_back_by_zipfile_and_unzip(files: list[Path], tmp_path: Path, force_zip64: bool) -> None:
    entries = [file_entry(f"mödel/ünïcode {p.name}", str(p)) for p in files]
    plan = zip_plan(entries, force_zip64=force_zip64)
    data = render_bytes(plan, CrcCache())
    assert len(data) == plan.size  # the size was exact before any byte
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    for path, info in zip(files, archive.infolist(), strict=True):
        assert info.filename == f"mödel/ünïcode {path.name}"
        assert info.compress_type == zipfile.ZIP_STORED
        assert archive.read(info) == path.read_bytes()
    assert (b"PK\x06\x06" in data) is force_zip64  # the zip64 end record only when needed (or forced)
    output = unzip_test(data, tmp_path)
    assert output.count(" OK") == len(files)


def test_zip64_for_an_entry_past_4_gib_is_planned_exactly(tmp_path: Path) -> None:
    """A sparse 4 GiB + 1 file: structure and size checked without reading it."""
    big = tmp_path / "huge.mkv"
    with open(big, "wb") as handle:
        handle.truncate(2**32 + 1)
    small = write(tmp_path / "after.jpg", jpeg_bytes(1))
    plan = zip_plan([file_entry("m/huge.mkv", str(big)), file_entry("m/after.jpg", str(small))])
    header = plan.parts[0]
    assert isinstance(header, bytes)
    assert struct.unpack_from("<II", header, 18) == (0xFFFFFFFF, 0xFFFFFFFF)  # sizes live in the zip64 extra
    assert struct.unpack_from("<HHQQ", header, 30 + len("m/huge.mkv")) == (1, 16, 2**32 + 1, 2**32 + 1)
    descriptor, tail = plan.parts[2], plan.parts[-1]
    assert isinstance(descriptor, Deferred) and descriptor.length == 24
    assert isinstance(tail, Deferred)
    rendered_tail = tail.render([0, 0])
    assert len(rendered_tail) == tail.length and b"PK\x06\x06" in rendered_tail
    expected = sum(part_length(p) for p in plan.parts)
    assert plan.size == expected > 2**32


def test_crc_cache_is_keyed_by_identity(files: list[Path]) -> None:
    cache = CrcCache()
    entry = file_entry("a", str(files[0]))
    plan = zip_plan([entry])
    first = render_bytes(plan, cache)
    assert entry.identity is not None and cache.get(entry.identity) is not None
    write(files[0], jpeg_bytes(50), mtime=1_800_000_000)  # changed: a new identity, a new CRC
    changed = file_entry("a", str(files[0]))
    assert changed.identity != entry.identity and cache.get(changed.identity) is None  # type: ignore[arg-type]
    assert zipfile.ZipFile(io.BytesIO(render_bytes(zip_plan([changed]), cache))).testzip() is None
    assert first != render_bytes(zip_plan([changed]), cache)


def test_a_file_that_shrinks_is_detected(files: list[Path]) -> None:
    plan = zip_plan([file_entry("n", str(files[4]))])
    files[4].write_bytes(b"short")
    with pytest.raises(ArchiveSourceChanged):
        render_bytes(plan)


def test_pdf_passes_jpeg_through_and_keeps_png_alpha_lossless(tmp_path: Path) -> None:
    jpeg = write(tmp_path / "a.jpg", jpeg_bytes(3, (64, 48)))
    gray = tmp_path / "g.jpg"
    Image.new("L", (20, 10), 128).save(gray, "JPEG")
    rgba = tmp_path / "t.png"
    image = Image.new("RGBA", (16, 12), (10, 200, 30, 255))
    image.putpixel((3, 4), (1, 2, 3, 0))
    image.save(rgba)
    plain = write(tmp_path / "p.png", png_bytes(5))
    spool_path = tmp_path / "spool"
    with open(spool_path, "w+b") as spool:
        images = [pdfs.pdf_image(str(p), spool) for p in (jpeg, gray, rgba, plain)]
    plan = pdfs.pdf_plan(images)
    data = render_bytes(plan)
    assert len(data) == plan.size
    reader: Any = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 4
    first = reader.pages[0]["/Resources"]["/XObject"]["/Im0"].get_object()
    assert first["/Filter"] == "/DCTDecode" and first.get_data() == jpeg.read_bytes()
    second = reader.pages[1]["/Resources"]["/XObject"]["/Im0"].get_object()
    assert second["/ColorSpace"] == "/DeviceGray" and second.get_data() == gray.read_bytes()
    third = reader.pages[2]["/Resources"]["/XObject"]["/Im0"].get_object()
    mask = third["/SMask"].get_object()
    assert mask.get_data() == Image.open(rgba).getchannel("A").tobytes()
    assert third.get_data() == Image.open(rgba).convert("RGB").tobytes()
    assert reader.pages[3].images[0].image.convert("RGB").tobytes() == Image.open(plain).convert("RGB").tobytes()
    assert [float(v) for v in reader.pages[0].mediabox] == [0, 0, 48, 36]  # 64x48 px at 96 dpi
    result = subprocess.run(["pdfinfo", "-"], input=data, capture_output=True, check=False)
    assert result.returncode == 0 and re.search(rb"Pages:\s+4\n", result.stdout)


def test_non_images_are_refused(tmp_path: Path) -> None:
    bogus = write(tmp_path / "x.jpg", b"not an image at all")
    with open(tmp_path / "spool", "w+b") as spool, pytest.raises(pdfs.NotAnImage):
        pdfs.pdf_image(str(bogus), spool)


def test_spans_of_a_zip_are_whole_files(files: list[Path]) -> None:
    plan = zip_plan([file_entry("x", str(files[1]))])
    spans = [p for p in plan.parts if isinstance(p, FileSpan)]
    assert spans == [FileSpan(str(files[1]), 0, files[1].stat().st_size)]


@pytest.mark.parametrize(
    ("mode", "save_options", "passed_through"),
    [
        ("RGB", {}, True),
        ("L", {}, True),
        ("P", {}, True),
        ("P16", {}, False),  # 16 colours are saved 4 bits deep: decoded and stored
        ("LA", {}, False),  # alpha: decoded, with a soft mask
        ("I;16", {}, False),  # 16-bit: decoded
    ],
)
def test_png_pages_are_lossless_whether_passed_through_or_converted(
    tmp_path: Path, mode: str, save_options: dict[str, int], passed_through: bool
) -> None:
    source = Image.effect_noise((37, 23), 60).convert("RGB")
    if mode == "P":
        image = source.quantize(200)
    elif mode == "P16":
        image = source.quantize(16)
    elif mode == "I;16":
        image = source.convert("L").convert("I;16")
    else:
        image = source.convert(mode)
    path = tmp_path / "x.png"
    image.save(path, "PNG", **save_options)
    with open(tmp_path / "spool", "w+b") as spool:
        page = pdfs.pdf_image(str(path), spool)
    assert (page.data[0].path == str(path)) is passed_through
    data = render_bytes(pdfs.pdf_plan([page]))
    decoded: Any = pypdf.PdfReader(io.BytesIO(data)).pages[0].images[0].image
    expected: Image.Image = Image.open(path)
    if mode in ("LA", "I;16"):
        expected = expected.convert("RGBA" if mode == "LA" else "L").convert("RGB")
        decoded = decoded.convert("RGB")
    else:
        expected, decoded = expected.convert("RGB"), decoded.convert("RGB")
    assert decoded.size == expected.size and decoded.tobytes() == expected.tobytes()


def test_unzip_restores_each_file_mtime(files: list[Path], tmp_path: Path) -> None:
    data = render_bytes(zip_plan([file_entry(p.name, str(p)) for p in files]))
    archive = tmp_path / "m.zip"
    archive.write_bytes(data)
    out = tmp_path / "out"
    env = {**os.environ, "TZ": "America/Sao_Paulo"}  # not UTC: DOS times alone would be 3 h off
    subprocess.run(["unzip", "-q", "-o", str(archive), "-d", str(out)], check=True, env=env)
    for path in files:
        assert int((out / path.name).stat().st_mtime) == int(path.stat().st_mtime)
        assert (out / path.name).read_bytes() == path.read_bytes()


@pytest.mark.parametrize(("orientation", "rotate"), [(1, 0), (3, 180), (6, 90), (8, 270), (2, 0)])
def test_jpeg_exif_orientation_becomes_the_page_rotation(tmp_path: Path, orientation: int, rotate: int) -> None:
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (40, 20), (200, 10, 10)).save(path, "JPEG", exif=exif.tobytes())
    with open(tmp_path / "spool", "w+b") as spool:
        page = pdfs.pdf_image(str(path), spool)
    data = render_bytes(pdfs.pdf_plan([page]))
    pdf_page: Any = pypdf.PdfReader(io.BytesIO(data)).pages[0]
    assert pdf_page.rotation == rotate
    assert pdf_page["/Resources"]["/XObject"]["/Im0"].get_object().get_data() == path.read_bytes()
