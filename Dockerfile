# Two images from one file (deploy/azure/README.md, README "Deploying to Azure"):
#
#   web     Django under gunicorn; also beat and the maintenance worker. requirements-web.txt
#           only: no torch, no diffusers (the web process never imports them, and
#           deploy/check_web_side.py fails the image if they are there).
#   worker  the GPU worker: requirements.txt, with a CUDA torch, diffusers, the finishing and
#           training libraries.
#
#   docker build --target web -t brandstudio-web .
#   docker build --target worker -t brandstudio-worker \
#       --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#
# TORCH_INDEX picks torch's CUDA build (empty: PyPI's torch, whose wheels bring their own CUDA
# libraries). Both run as the non-root user `studio` (uid 1000). Weights are never in an image:
# they are read from a mounted share (HF_HOME) and nothing is downloaded at job time.

# python:3.11-slim by default; BASE lets a build where Docker Hub is out of reach start from
# another Debian image with python3 and python3-venv (scripts/validate_deploy.sh does).
ARG BASE=python:3.11-slim-bookworm

# checkov:skip=CKV_DOCKER_7:the tag is in ARG BASE (python:3.11-slim-bookworm), which checkov does not resolve
# checkov:skip=CKV_DOCKER_2:Container Apps checks health with probes (deploy/azure/main.bicep, /health/ with the real Host); beat and the maintenance worker run from the web image and answer no HTTP
FROM ${BASE} AS base
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin studio

# --- Dependencies, each set in a virtualenv that the final stages copy whole.
FROM base AS web-deps
# A package mirror, or the CA of a proxy, where the build runs behind one (empty: PyPI).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
COPY requirements-web.txt /tmp/requirements/
RUN python3 -m venv /opt/venv && pip install -r /tmp/requirements/requirements-web.txt

FROM web-deps AS worker-deps
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_CERT
ARG TORCH_INDEX=""
COPY requirements.txt /tmp/requirements/
RUN if [ -n "$TORCH_INDEX" ]; then pip install --index-url "$TORCH_INDEX" torch==2.14.1 torchvision==0.29.1; fi \
    && pip install -r /tmp/requirements/requirements.txt

# --- The GPU worker. One job at a time; SIGTERM lets the job it runs finish (warm shutdown).
FROM base AS worker
ENV HF_HUB_OFFLINE=1 HF_HOME=/models/huggingface STUDIO_MODELS_DIR=/models/studio \
    STUDIO_COMPILE_CACHE_DIR=/data/compile-cache STUDIO_LORA_ROOT=/data/loras
COPY --from=worker-deps /opt/venv /opt/venv
WORKDIR /app
COPY --chown=studio:studio . .
RUN mkdir -p /app/var /models /data && chown studio:studio /app/var /models /data
USER studio
CMD ["celery", "-A", "brandstudio", "worker", "-Q", "gpu,training", "--concurrency", "1", "--pool", "prefork", "-n", "gpu@%h", "--loglevel", "INFO"]

# --- The web server (the default target); beat and the maintenance worker run from it too.
FROM base AS web
ENV HF_HUB_OFFLINE=1 STUDIO_LORA_ROOT=/data/loras
COPY --from=web-deps /opt/venv /opt/venv
WORKDIR /app
COPY --chown=studio:studio . .
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var /data && chown -R studio:studio /app/var /data
USER studio
EXPOSE 8000
CMD ["gunicorn", "brandstudio.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8"]
