# certstream-scout: one image for every role (producer, each worker kind, Flower); docker-compose.yml
# picks the role with `command:`. Build: docker build -t certstream-scout .
#
# Stage 1 builds wheels for the pinned requirements (compilers live only here); stage 2 installs those
# wheels into a clean slim image and runs as an unprivileged user. No secret is baked in: configuration
# comes from the environment (.env through compose's env_file).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# gcc and headers only for packages without a wheel for this platform; they stay in this stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc=4:12.* libc6-dev=2.36-* \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY requirements.txt ./
RUN pip wheel --wheel-dir /wheels -r requirements.txt
COPY pyproject.toml celeryconfig.py ./
COPY scout ./scout
# README.md is named by pyproject; an empty stand-in keeps the build independent of the docs.
RUN touch README.md && pip wheel --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    OUTPUT_DIR=/data/ctlog_data
RUN groupadd --system --gid 10001 scout \
 && useradd --system --uid 10001 --gid scout --home-dir /app --shell /usr/sbin/nologin scout \
 && mkdir -p /app /data/ctlog_data \
 && chown -R scout:scout /app /data
# Wheels only, no index: exactly what the builder resolved from the pinned requirements.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels /wheels/*.whl
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 5555
# The role's compose service overrides this; alone the image runs the pipeline in one process.
ENTRYPOINT ["scout"]
CMD ["run"]
