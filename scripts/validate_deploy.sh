#!/usr/bin/env bash
# Offline checks of what deploys the studio (deploy/azure/README.md, "Validated offline"):
#
#   1. every Bicep file parsed (pycep-parser) and scanned (checkov), the Dockerfile scanned too;
#   2. docker-compose.yml read by real compose implementations (podman-compose, docker-compose);
#   3. both images built with buildah, their sizes printed, and the web image checked from the
#      inside: migrations, deploy checks, every page and task imported, the reaper run, and no
#      torch (deploy/check_web_side.py); the worker image imports torch and diffusers.
#
#   scripts/validate_deploy.sh              everything this machine can do
#   scripts/validate_deploy.sh --no-worker  skip the worker image (several GB to download)
#   scripts/validate_deploy.sh --no-build   checks 1 and 2 only
#
# A step whose tool is missing says SKIPPED and why; any failure exits non-zero. Neither Azure nor
# the Bicep CLI is needed (nor reachable from CI): `az bicep build` and a what-if deployment are
# the operator's first steps in deploy/azure/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=1 WORKER=1
for arg in "$@"; do
  case "$arg" in
    --no-build) BUILD=0 ;;
    --no-worker) WORKER=0 ;;
    *) echo "usage: $0 [--no-build] [--no-worker]" >&2; exit 2 ;;
  esac
done

VENV=${VALIDATE_VENV:-var/validate-venv}
PYTHON=${PYTHON:-python3}
section() { printf '\n== %s\n' "$*"; }
skipped() { printf 'SKIPPED: %s\n' "$*"; }

section "tools (deploy/requirements-validate.txt in $VENV)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.installed-$(sha1sum deploy/requirements-validate.txt | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/pip" install --quiet -r deploy/requirements-validate.txt
  touch "$stamp"
fi
"$VENV/bin/checkov" --version | sed 's/^/checkov /'

section "Bicep: parse"
"$VENV/bin/python" - <<'EOF'
from pathlib import Path

from pycep import BicepParser

for path in sorted(Path("deploy/azure").glob("*.bicep")):
    tree = BicepParser().parse(file_path=path)
    counts = {part: len(tree.get(part) or {}) for part in ("parameters", "variables", "resources", "modules", "outputs")}
    print(path, "parsed:", ", ".join(f"{n} {part}" for part, n in counts.items()))
EOF

section "Bicep and Dockerfile: checkov"
# --skip-download: no policy updates from the vendor's servers (none are reachable here, nor needed).
"$VENV/bin/checkov" --directory deploy/azure --framework bicep --compact --skip-download
"$VENV/bin/checkov" --file Dockerfile --framework dockerfile --compact --skip-download --quiet

section "docker-compose.yml"
export SECRET_KEY=${SECRET_KEY:-validate-only}
"$VENV/bin/podman-compose" -f docker-compose.yml config >/dev/null && echo "podman-compose config: valid"
if command -v docker-compose >/dev/null; then
  docker-compose -f docker-compose.yml config --quiet && echo "docker-compose $(docker-compose version --short) config: valid"
else
  skipped "docker-compose is not installed (Debian: apt-get install docker-compose)"
fi
if docker compose version >/dev/null 2>&1; then
  docker compose -f docker-compose.yml config --quiet && echo "docker compose config: valid"
else
  skipped "docker compose (v2) needs the Docker CLI plugin and is not installed here"
fi

[ "$BUILD" = 1 ] || { section "images"; skipped "--no-build"; exit 0; }
section "images"
if ! command -v buildah >/dev/null; then
  skipped "buildah is not installed (Debian: apt-get install buildah); no image is built"
  exit 0
fi

# The base image: python:3.11-slim where Docker Hub answers, else a Debian bookworm made here with
# debootstrap from Debian's own packages (python3 3.11, python3-venv), imported as a local image.
base=${BUILD_BASE:-docker.io/library/python:3.11-slim-bookworm}
if ! buildah pull --quiet "$base" >/dev/null 2>&1; then
  echo "$base cannot be pulled here; using a Debian bookworm base built with debootstrap"
  base=localhost/studio-base:bookworm
  if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
    if ! command -v debootstrap >/dev/null || ! command -v podman >/dev/null; then
      skipped "no registry, and no debootstrap and podman to make a base: no image is built"
      exit 0
    fi
    root=$(mktemp -d)
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" \
      http://deb.debian.org/debian >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | podman import - "$base" >/dev/null
    rm -rf "$root"
  fi
fi

# This machine's pip setup travels into the build: local package mirrors (file:// indexes) and the
# CA bundle of a TLS-inspecting proxy, mounted read-only, never copied into a layer.
build_args=(--build-arg "BASE=$base")
mounts=()
extra=$("$PYTHON" -m pip config get global.extra-index-url 2>/dev/null || true)
if [ -n "$extra" ]; then
  build_args+=(--build-arg "PIP_EXTRA_INDEX_URL=$extra")
  for url in $extra; do
    case "$url" in file://*) dir=$(dirname "${url#file://}"); mounts+=(--volume "$dir:$dir:ro") ;; esac
  done
fi
cert=${PIP_CERT:-$("$PYTHON" -m pip config get global.cert 2>/dev/null || true)}
if [ -n "$cert" ] && [ -f "$cert" ]; then
  mounts+=(--volume "$cert:/etc/ssl/certs/build-ca.crt:ro")
  build_args+=(--build-arg "PIP_CERT=/etc/ssl/certs/build-ca.crt")
fi
# chroot isolation: no OCI runtime needed (this machine's cgroups and rlimits refuse crun's).
isolation=(--isolation "${BUILDAH_ISOLATION:-chroot}" --ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

build() {  # build TARGET: the image localhost/brandstudio-TARGET, and its size
  local started=$SECONDS
  buildah bud --quiet --layers "${isolation[@]}" "${mounts[@]}" "${build_args[@]}" \
    --target "$1" -t "localhost/brandstudio-$1:validate" . >/dev/null
  printf 'brandstudio-%s built in %d s: %s\n' "$1" $((SECONDS - started)) \
    "$(buildah images --format '{{.Size}}' "localhost/brandstudio-$1:validate")"
}
inside() {  # inside IMAGE COMMAND...: run a command in a throwaway container of the image
  local image=$1 container
  shift
  container=$(buildah from --quiet "$image")
  buildah run --isolation "${BUILDAH_ISOLATION:-chroot}" "$container" -- "$@" || { buildah rm "$container" >/dev/null; return 1; }
  buildah rm "$container" >/dev/null
}

build web
inside localhost/brandstudio-web:validate python deploy/check_web_side.py
inside localhost/brandstudio-web:validate sh -c 'id -un; ! python -c "import torch" 2>/dev/null && echo "torch: not installed"'

if [ "$WORKER" = 1 ]; then
  build worker
  inside localhost/brandstudio-worker:validate sh -c 'id -un; python -c "import torch, diffusers; print(\"torch\", torch.__version__, \"CUDA\", torch.version.cuda, \"diffusers\", diffusers.__version__)"'
else
  skipped "--no-worker"
fi
