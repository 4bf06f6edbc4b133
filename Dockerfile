# archive-catalog in a container: built from this repository with only the package registries
# (Debian's for ffmpeg, PyPI for the wheel's dependencies), run as a non-root user.
#
#   docker build -t archive-catalog .
#   docker run -d -p 8008:8008 \
#       -v /srv/archive:/library:ro \            # your archive; drop ":ro" to allow deletes to the trash
#       -v archive-catalog-cache:/cache \        # thumbnails, archives, hashes (kept across restarts)
#       -e CATALOG_AUTH_TOKEN=change-me-please \ # it listens on all interfaces inside the container
#       archive-catalog
#
# Every setting is an environment variable too (`docker run --rm archive-catalog --help`).
# With the library mounted read-only everything works but deletes, which answer a clear error.

FROM python:3.11-slim-bookworm AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY templates ./templates
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /cache --create-home catalog
COPY --from=wheel /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER catalog
ENV HOST=0.0.0.0 \
    PORT=8008 \
    MODELS_DIR=/library \
    CACHE_DIR=/cache \
    PYTHONUNBUFFERED=1
VOLUME ["/cache"]
EXPOSE 8008
HEALTHCHECK --interval=30s --timeout=5s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8008/healthz', timeout=4)"
ENTRYPOINT ["archive-catalog"]
