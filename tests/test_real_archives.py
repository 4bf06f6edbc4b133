"""What real archives hold and real clients send (issue 11).

High-bit-depth images (16-bit grayscale scans, 16-bit RGB, 32-bit integer and float TIFFs)
must come out of thumbnails and PDFs following their gradient, not clipped to white; each
case is built on disk and its thumbnail or PDF page decoded. And every 4xx is JSON, even
those aiohttp's HTTP parser answers before the app runs, checked against a real server.
"""

from __future__ import annotations

import io
import itertools
import socket
import struct
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pypdf
import pytest
from aiohttp.test_utils import TestClient
from PIL import Image

from server.archives import pdfs
from server.archives.plans import render_bytes
from server.cache.thumbnails import _image_thumbnail
from server.serve import MAX_HEADER_FIELD, MAX_REQUEST_LINE
from server.web.params import MAX_PARAM_LENGTH, MAX_PARAMS

from .helpers import make_library, write
from .server_process import ServerProcess, running_server

WIDTH, HEIGHT = 96, 24


# -- building high-bit-depth images ----------------------------------------------------------


def ramp(low: int, high: int) -> list[int]:
    """One row, rising from `low` at the left to `high` at the right."""
    return [low + (high - low) * x // (WIDTH - 1) for x in range(WIDTH)]


def png(color_type: int, depth: int, rows: bytes, *extra: tuple[bytes, bytes]) -> bytes:
    """A PNG written by hand: Pillow cannot save 16-bit RGB or a 16-bit gray tRNS chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, depth, color_type, 0, 0, 0)
    stride = len(rows) // HEIGHT
    scanlines = b"".join(b"\x00" + rows[y * stride : (y + 1) * stride] for y in range(HEIGHT))
    chunks = [chunk(b"IHDR", header), *(chunk(k, d) for k, d in extra)]
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")


def gray16_png(low: int, high: int, transparent: int | None = None) -> bytes:
    row = struct.pack(f">{WIDTH}H", *ramp(low, high))
    extra = [(b"tRNS", struct.pack(">H", transparent))] if transparent is not None else []
    return png(0, 16, row * HEIGHT, *extra)


def rgb16_png() -> bytes:
    """Red rises, green falls, blue stays at the middle, all 16 bits deep."""
    row = b"".join(struct.pack(">HHH", v, 65535 - v, 32768) for v in ramp(0, 65535))
    return png(2, 16, row * HEIGHT)


def tiff(mode: str, values: list[int] | list[float]) -> bytes:
    image = Image.new(mode, (WIDTH, HEIGHT))
    image.putdata([values[x] for _ in range(HEIGHT) for x in range(WIDTH)])
    buffer = io.BytesIO()
    image.save(buffer, "TIFF")
    return buffer.getvalue()


# -- reading the result ------------------------------------------------------------------------


def stripes(image: Image.Image, channel: int = 0, count: int = 4) -> list[float]:
    """The mean of one channel over `count` vertical stripes, left to right."""
    band = image.convert("RGB").getchannel(channel)
    width = band.width // count
    means = []
    for n in range(count):
        pixels = band.crop((n * width, 0, (n + 1) * width, band.height)).tobytes()
        means.append(sum(pixels) / len(pixels))
    return means


def assert_rises(means: list[float], spread: float = 80) -> None:
    """Not blank (white or black) and following the source: rising, over a wide range."""
    assert all(b > a + 10 for a, b in itertools.pairwise(means)), means
    assert means[-1] - means[0] > spread, means


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


def pdf_of(path: Path, tmp_path: Path) -> bytes:
    with open(tmp_path / "spool", "w+b") as spool:
        page = pdfs.pdf_image(str(path), spool)
    return bytes(render_bytes(pdfs.pdf_plan([page])))


def page_image_of(page: Any) -> Image.Image:
    image: Image.Image | None = page.images[0].image
    assert image is not None
    return image


def page_image(pdf: bytes) -> Image.Image:
    image = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].images[0].image
    assert image is not None
    return image


def rendered_page(pdf: bytes, tmp_path: Path) -> Image.Image:
    """The page as a PDF viewer shows it (poppler), so the soft mask and colour space count too."""
    subprocess.run(["pdftoppm", "-r", "72", "-png", "-singlefile", "-", str(tmp_path / "page")], input=pdf,
                   check=True, capture_output=True)  # fmt: skip
    return decoded((tmp_path / "page.png").read_bytes())


# -- each high-bit-depth kind, in thumbnails and in PDFs ---------------------------------------

SOURCES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "16-bit gray PNG (I;16), full range": ("scan.png", lambda: gray16_png(0, 65535)),
    "16-bit gray PNG (I;16), a 12-bit scan": ("scan12.png", lambda: gray16_png(0, 4095)),
    "16-bit gray PNG (I;16), a dark corner of the range": ("dark.png", lambda: gray16_png(1000, 9000)),
    "16-bit big-endian gray TIFF (I;16B)": ("scan.tif", lambda: tiff("I;16B", ramp(0, 65535))),
    "32-bit integer TIFF (I)": ("scan32.tif", lambda: tiff("I", ramp(0, 65535))),
    "32-bit float TIFF (F), 0..1": ("float.tif", lambda: tiff("F", [v / 65535 for v in ramp(0, 65535)])),
    "32-bit float TIFF (F), any range": ("float.tif", lambda: tiff("F", [v - 20000.5 for v in ramp(0, 65535)])),
}


@pytest.fixture(params=list(SOURCES), ids=list(SOURCES))
def high_bit_source(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    name, make = SOURCES[request.param]
    return write(tmp_path / name, make())


def test_pillow_opens_the_sources_in_the_modes_meant(tmp_path: Path) -> None:
    modes = {}
    for label, (name, make) in SOURCES.items():
        with Image.open(write(tmp_path / name, make())) as image:
            modes[label.split(" (")[0]] = image.mode
    assert modes["16-bit gray PNG"] == "I;16"
    assert modes["16-bit big-endian gray TIFF"] == "I;16B"
    assert modes["32-bit integer TIFF"] == "I" and modes["32-bit float TIFF"] == "F"
    with Image.open(write(tmp_path / "rgb.png", rgb16_png())) as image:
        assert image.mode == "RGB"  # Pillow keeps the high byte of each 16-bit channel


def test_high_bit_depth_thumbnails_follow_the_gradient(high_bit_source: Path) -> None:
    thumbnail = decoded(_image_thumbnail(str(high_bit_source), 64))
    assert thumbnail.size == (64, 16)
    assert_rises(stripes(thumbnail))


def test_high_bit_depth_pdf_pages_follow_the_gradient(high_bit_source: Path, tmp_path: Path) -> None:
    pdf = pdf_of(high_bit_source, tmp_path)
    image = page_image(pdf)
    assert image.size == (WIDTH, HEIGHT)
    assert_rises(stripes(image))
    assert_rises(stripes(rendered_page(pdf, tmp_path)))


def test_full_range_16_bit_keeps_its_tones(tmp_path: Path) -> None:
    """A full-range 16-bit scan maps by /257: black stays black, white stays white."""
    image = page_image(pdf_of(write(tmp_path / "scan.png", gray16_png(0, 65535)), tmp_path)).convert("L")
    row = image.tobytes()[:WIDTH]
    assert max(abs(got - value / 257) for got, value in zip(row, ramp(0, 65535), strict=True)) <= 1


def test_16_bit_rgb_keeps_each_channel(tmp_path: Path) -> None:
    source = write(tmp_path / "rgb.png", rgb16_png())
    thumbnail = decoded(_image_thumbnail(str(source), 64))
    page = page_image(pdf_of(source, tmp_path))
    for image in (thumbnail, page):
        assert_rises(stripes(image, 0))
        assert_rises([-m for m in stripes(image, 1)])  # green falls
        assert all(abs(m - 128) < 8 for m in stripes(image, 2))


def test_16_bit_gray_transparency_becomes_a_mask(tmp_path: Path) -> None:
    """tRNS on a 16-bit gray PNG marks one value transparent: the leftmost column here."""
    source = write(tmp_path / "t.png", gray16_png(0, 65535, transparent=0))
    page = pypdf.PdfReader(io.BytesIO(pdf_of(source, tmp_path))).pages[0]
    resources: Any = page["/Resources"]
    xobject = resources["/XObject"]["/Im0"].get_object()
    mask = list(xobject["/SMask"].get_object().get_data()[:WIDTH])
    assert mask[0] == 0 and set(mask[1:]) == {255}
    assert_rises(stripes(page_image_of(page)))
    thumbnail = decoded(_image_thumbnail(str(source), WIDTH)).convert("L")  # the transparent column on white
    middle_row = thumbnail.tobytes()[WIDTH * (HEIGHT // 2) : WIDTH * (HEIGHT // 2 + 1)]
    assert middle_row[0] > 200 and middle_row[1] < 30
    assert_rises(stripes(thumbnail))


# -- the same through HTTP: the thumbnail URL and a PDF download -------------------------------


@pytest.fixture
async def scans_client(client: TestClient[Any, Any], library_root: Path) -> TestClient[Any, Any]:
    folder = library_root / "alpha" / "scans"
    write(folder / "p1.png", gray16_png(0, 65535))
    write(folder / "p2.png", gray16_png(0, 4095))
    write(folder / "p3.png", rgb16_png())
    return client


async def test_16_bit_pngs_through_http(scans_client: TestClient[Any, Any], tmp_path: Path) -> None:
    for name in ("p1.png", "p2.png", "p3.png"):
        response = await scans_client.get(f"/thumb/alpha/scans/{name}?w=64")
        assert response.status == 200
        assert_rises(stripes(decoded(await response.read())))
    response = await scans_client.get("/api/download?site=alpha&model=scans&format=pdf")
    assert response.status == 200
    pdf = await response.read()
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 3
    for page in reader.pages:
        assert_rises(stripes(page_image_of(page)))


# -- every 4xx is JSON, also those of aiohttp's HTTP parser (a real server process) ------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("parser")
    with running_server(make_library(folder / "library"), folder / "cache") as process:
        yield process


def exchange(server: ServerProcess, head: bytes) -> tuple[int, dict[str, Any]]:
    """Send one raw request, read the answer to the end; its status and JSON body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:  # the server closes at once; what it sent was read already
            pass
    status_line, _, rest = answer.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in headers.lower(), answer[:500]
    document: dict[str, Any] = orjson.loads(body)
    assert set(document) == {"error", "message"}, document
    return int(status_line.split()[1]), document


def request(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers, "", ""]
    return "\r\n".join(lines).encode()


def test_the_longest_query_the_contract_allows_reaches_the_app(server: ServerProcess) -> None:
    longest = "%C3%A9" * 100 + "x" * (MAX_PARAM_LENGTH - 100)  # 1024 characters, 100 of them "é"
    models = "&".join(f"model={longest}" for _ in range(MAX_PARAMS - 2))
    target = f"/api/download?site=alpha&format=zip&{models}"
    assert len(target) > 65536  # past aiohttp's and the old limit: schemathesis's case
    status, body = exchange(server, request(target))
    assert (status, body["error"]) == (404, "not_found")  # the app's answer: no such model


def test_an_over_long_request_line_is_a_json_414(server: ServerProcess) -> None:
    target = "/api/download?site=alpha&model=" + "x" * MAX_REQUEST_LINE
    status, body = exchange(server, request(target))
    assert (status, body["error"]) == (414, "uri_too_long")
    assert str(MAX_REQUEST_LINE) in body["message"]


def test_an_over_long_header_is_a_json_431(server: ServerProcess) -> None:
    status, body = exchange(server, request("/api/sites", "X-Long: " + "y" * (MAX_HEADER_FIELD + 1)))
    assert (status, body["error"]) == (431, "header_too_large")


@pytest.mark.parametrize(
    "head",
    [
        b"GE\x01T / HTTP/1.1\r\nHost: x\r\n\r\n",  # not a method
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",  # a space in a header name
        request("/api/sites", *(f"X-{n}: 1" for n in range(200))),  # too many headers
    ],
    ids=["method", "header-name", "header-count"],
)
def test_malformed_http_is_a_json_400(server: ServerProcess, head: bytes) -> None:
    status, body = exchange(server, head)
    assert (status, body["error"]) == (400, "bad_request")
    assert body["message"].startswith("The request is not valid HTTP")


def test_the_server_still_answers_after_refusals(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as connection:
        connection.sendall(request("/healthz"))
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b'"library":"ok"' in answer
