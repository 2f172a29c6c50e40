# syntax=docker/dockerfile:1
# labelwise server image: `docker build -t labelwise .` then
# `docker run -p 50051:50051 -p 9090:9090 labelwise` (flags after the image go to `labelwise serve`).

# Build stage: a virtual environment with the server, the client package and their
# runtime dependencies only (no dev, test or simulate extras). The dependencies are the
# locked, hash-checked set of requirements/runtime.txt (scripts/lock updates it), so two
# builds install the same files; the project's own two packages then go in without deps.
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/runtime.txt ./requirements/
RUN python -m venv /opt/labelwise \
    && /opt/labelwise/bin/pip install --require-hashes --no-deps -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY clients/python ./clients/python
COPY service ./service
RUN /opt/labelwise/bin/pip install --no-deps ./clients/python . \
    && /opt/labelwise/bin/python -m compileall -q /opt/labelwise/lib

# Runtime stage: the same slim base, the environment, an unprivileged user.
FROM python:3.11.14-slim-bookworm
# OCI annotations; CI or the release sets the build's own with
# `--build-arg VERSION=... --build-arg REVISION=$(git rev-parse HEAD) --build-arg CREATED=...`.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="labelwise" \
      org.opencontainers.image.description="Active-learning query selection as a stateless gRPC service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="labelwise" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
RUN groupadd --system --gid 10001 labelwise \
    && useradd --system --uid 10001 --gid labelwise --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin labelwise
COPY --from=build /opt/labelwise /opt/labelwise
# The read-only root filesystem of the Kubernetes manifests needs no write but /tmp, where
# the workers' Prometheus values live (see docs/operations/deployment.md). A fixed glibc mmap threshold
# hands every freed request buffer over 1 MiB back to the kernel, and two malloc arenas keep
# gRPC's many threads from each holding its own, so memory returns to its baseline after big
# requests instead of ratcheting up (tests/test_faults.py). /metrics listens on every
# interface, as gRPC does: the server's own default is loopback only.
ENV PATH=/opt/labelwise/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_MMAP_THRESHOLD_=1048576 \
    MALLOC_ARENA_MAX=2 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/labelwise-metrics \
    LABELWISE_HOST=[::] \
    LABELWISE_PORT=50051 \
    LABELWISE_METRICS_PORT=9090 \
    LABELWISE_METRICS_HOST=[::]
USER 10001:10001
WORKDIR /tmp
EXPOSE 50051 9090
# Through the gRPC health service, with the image's own Python client (no extra binary).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["labelwise", "health", "--timeout", "3"]
ENTRYPOINT ["labelwise", "serve"]
