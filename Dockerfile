# postroom: one image for the API (postroom serve) and the workers (postroom worker).
FROM python:3.12-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POSTROOM_TEMPLATES_DIR=/app/templates \
    POSTROOM_VAR_DIR=/var/lib/postroom

WORKDIR /app
# procps for the health check; Pango for WeasyPrint (html engine); libdmtx for the print
# channel's inserter codes; LibreOffice Writer and
# Debian's python3-uno for the docx engine's conversion pool.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        procps libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 libdmtx0b \
        libreoffice-writer-nogui python3 python3-uno \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app postroom \
    && mkdir -p /var/lib/postroom \
    && chown postroom /var/lib/postroom

COPY pyproject.toml README.md ./
COPY postroom ./postroom
RUN pip install .

COPY templates ./templates
COPY examples ./examples

USER postroom
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)" || exit 1
CMD ["postroom", "serve", "--host", "0.0.0.0", "--port", "8000"]
