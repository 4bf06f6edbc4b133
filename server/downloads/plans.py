"""From a selection to an archive plan: ZIP entries, PDF pages, and a PDF's size estimate.

Blocking where it reads images (run `pdf_archive_plan` in a thread). No aiohttp here.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from server.archives.pdfs import NotAnImage, PdfImage, pdf_entry, pdf_image, pdf_plan
from server.archives.plans import ArchivePlan, FileIdentity, FileSpan
from server.archives.zips import ZipEntry, zip_plan
from server.downloads.selection import SelectedFile, Selection
from server.errors import NotFound

log = logging.getLogger("archive_catalog")

PDF_PAGE_OVERHEAD = 600  # bytes of PDF structure per page, for estimates


def pdf_estimate(selection: Selection, fmt: str) -> int:
    """A PDF format's size, from the images' sizes (a ZIP's is exact: `zip_archive_plan(...).size`)."""
    images = selection.images()
    pdfs = len({f.model for f in images}) if fmt == "pdfs-zip" else 1
    return sum(f.size for f in images) + PDF_PAGE_OVERHEAD * len(images) + 1000 * pdfs


def zip_archive_plan(selection: Selection) -> ArchivePlan:
    """The ZIP of the selection, planned (pure CPU: ~10 µs a file; run large ones in a thread)."""
    return zip_plan(zip_entries(selection))


def zip_entries(selection: Selection) -> list[ZipEntry]:
    return [
        ZipEntry(
            f.archive_name,
            f.size,
            f.mtime,
            (FileSpan(f.path, 0, f.size),),
            FileIdentity(f.path, f.size, f.mtime_ns, f.inode),
        )
        for f in selection.files
    ]


def _page_images(files: Sequence[SelectedFile], spool: BinaryIO) -> list[PdfImage]:
    images = []
    for f in files:
        try:
            images.append(pdf_image(f.path, spool))
        except NotAnImage:
            log.warning("Left out of the PDF (not a readable image): %s", f.archive_name)
    return images


def pdf_archive_plan(selection: Selection, fmt: str, spool_path: Path) -> ArchivePlan:
    """Probe (and for non-JPEGs convert) every image; blocking, run in a thread."""
    with open(spool_path, "w+b") as spool:
        if fmt == "pdf":
            images = _page_images(selection.images(), spool)
            if not images:
                raise NotFound("There are no readable images to put in a PDF.")
            return pdf_plan(images, str(spool_path))
        entries = []
        for model in selection.models:
            files = [f for f in selection.images() if f.model == model]
            images = _page_images(files, spool)
            if images:
                mtime = max(f.mtime for f in files)
                entries.append(pdf_entry(f"{model}.pdf", images, mtime))
        if not entries:
            raise NotFound("There are no readable images to put in a PDF.")
    plan = zip_plan(entries)
    plan.spool = str(spool_path)
    return plan
