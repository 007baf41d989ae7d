"""The two images (Dockerfile, deploy/azure/): the web image installs requirements-web.txt only,
which holds no worker library, and the web side runs on it without importing torch. The images
themselves are built by scripts/validate_deploy.sh where a container builder runs."""

import os
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
WORKER_ONLY = {
    "torch",
    "torchvision",
    "diffusers",
    "transformers",
    "torchao",
    "bitsandbytes",
    "peft",
    "accelerate",
    "spandrel",
    "opencv-python-headless",
    "colour-science",
    "vtracer",
    "resvg-py",
}


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line} is not pinned with =="
            found[re.sub(r"\[.*\]", "", name).lower()] = version
    return found


def test_the_web_requirements_hold_no_worker_library() -> None:
    web = pins(ROOT / "requirements-web.txt")
    assert not WORKER_ONLY & set(web), WORKER_ONLY & set(web)
    assert {"django", "gunicorn", "celery", "azure-identity", "django-storages"} <= set(web)


def test_the_full_requirements_are_the_web_ones_and_the_workers() -> None:
    full = ROOT / "requirements.txt"
    assert "-r requirements-web.txt" in full.read_text().splitlines()
    worker = pins(full)
    assert set(worker) >= WORKER_ONLY
    assert not set(worker) & set(pins(ROOT / "requirements-web.txt")), "a package pinned twice drifts"


def test_the_web_image_installs_only_the_web_requirements() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = dict(re.findall(r"^FROM \S+ AS (\S+)\n(.*?)(?=^FROM |\Z)", dockerfile, re.M | re.S))
    assert {"web", "worker", "web-deps", "worker-deps"} <= set(stages)
    assert "requirements-web.txt" in stages["web-deps"] and "requirements.txt" not in stages["web-deps"]
    assert "--from=web-deps" in stages["web"] and "worker-deps" not in stages["web"]
    assert all("USER studio" in stages[name] for name in ("web", "worker"))


def test_the_web_side_runs_without_importing_torch() -> None:
    """What the web image runs (pages, admin, tasks, the reaper, migrations, deploy checks) loads no
    worker library; in the image they are not even installed (scripts/validate_deploy.sh)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DJANGO_", "DATABASE_"))}
    script = ROOT / "deploy" / "check_web_side.py"
    out = subprocess.run(
        [sys.executable, str(script), "--allow-installed"], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "worker libraries loaded: none" in out.stdout


def test_the_gpu_workers_scale_on_the_queues_they_take() -> None:
    """KEDA's Redis rules watch exactly the lists the worker app consumes, and those are the
    queues CELERY_TASK_ROUTES sends GPU work to; beat is one replica, workers start from zero."""
    bicep = (ROOT / "deploy" / "azure" / "main.bicep").read_text()
    watched = set(re.findall(r"listName: '([^']+)'", bicep))
    consumed = set(re.search(r"'-Q'\s+'([^']+)'\s+'--concurrency'", bicep)[1].split(","))
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} - {"maintenance"}
    assert watched == consumed == routed
    assert re.search(r"minReplicas: 0\s+maxReplicas: workerMaxReplicas", bicep)
    assert re.search(r"minReplicas: 1\s+maxReplicas: 1 // one beat", bicep)
    assert "'Consumption-GPU-NC8as-T4'" in bicep and "'Consumption-GPU-NC24-A100'" in bicep
