# One image for web and worker. The worker needs a CUDA torch: build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
# (the default installs the torch pinned in requirements.txt from PyPI).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HF_HUB_OFFLINE=1
WORKDIR /app
RUN useradd --create-home --uid 1000 studio
COPY requirements.txt .
ARG TORCH_INDEX=""
RUN if [ -n "$TORCH_INDEX" ]; then pip install --index-url "$TORCH_INDEX" torch==2.14.1 torchvision==0.29.1; fi \
    && pip install -r requirements.txt
COPY . .
RUN SECRET_KEY=build python manage.py collectstatic --noinput \
    && mkdir -p /app/var /compile-cache && chown -R studio /app/var /compile-cache
USER studio
EXPOSE 8000
CMD ["gunicorn", "brandstudio.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2", "--threads", "8"]
