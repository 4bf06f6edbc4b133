"""Archive plans: ZIP, PDF and ZIP-of-PDFs as exact-size sequences of parts (no aiohttp).

A plan is the archive written down before any byte is sent: small header byte strings
interleaved with `FileSpan`s (a region of a file on disk, sent with sendfile and copied into
the cache with copy_file_range) and `Deferred` parts (ZIP data descriptors and the central
directory, whose bytes need CRC-32s that are computed while the file bytes are already on
their way). Every part's length is known up front, so the archive's size is exact before the
first byte. The same plan renders the same bytes whichever way it is consumed (`render_bytes`
for in-memory builds and tests, or part by part by the streaming sender).

- `plans`: the parts, the plan, CRC-32 jobs and their cache, `render_bytes`, `FORMAT_VERSION`;
- `zips`: stored ZIP entries, flag bit 3 (CRC in a data descriptor), UTF-8 names, zip64 when a
  size, offset or count overflows (or when forced, for tests);
- `pdfs`: one image per page; JPEGs passed through byte for byte (DCTDecode), PNGs that a PDF
  takes as they are keep their compressed pixels, other images decoded once and stored
  losslessly (FlateDecode, alpha as a soft mask) into a spool file;
- `pixels`: high-bit-depth images (16-bit scans) scaled to 8 bits, shared with the thumbnails.
"""
