# Runtime image for `mottling serve`: the base install only (ONNX Runtime, no torch) plus models/.
#   docker build -t mottling .
#   docker run --rm -p 8000:8000 mottling        # then open http://localhost:8000/
# tests/test_dockerfile_recipe.py replays the install and start below in a clean virtualenv.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY mottling ./mottling
COPY serving ./serving
# The base dependencies only: no [train] extra, so no torch in the image.
RUN pip install --no-cache-dir . && rm -rf build ./*.egg-info
COPY models ./models

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mottling
USER mottling

# A non-editable install cannot find models/ beside the package, so name the model explicitly.
ENV MOTTLING_MODEL_PATH=/app/models/mottling-v0.3.0.onnx
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["mottling", "serve", "--host", "0.0.0.0", "--port", "8000"]
