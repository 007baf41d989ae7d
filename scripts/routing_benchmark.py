"""Routing across workers: today's dispatch (every job on the shared `gpu` queue) against routing (a
job to the worker that holds its model), with real Celery workers on this machine's CPU.

    .venv/bin/python scripts/routing_benchmark.py [--jobs 100] [--users 10] [--kill] [--json]

Three workers, each starting with a different default model and a memory budget that holds one
model at a time (as a card holds one 10-30 GB checkpoint); three tiny models of different families
(FLUX.1, SDXL, SD3); 100 jobs from 10 users, each for a model drawn with a fixed seed (both modes
get the same jobs), all submitted at once and dispatched as the studio does (STUDIO_USER_DISPATCH
of a user's jobs on the broker at a time). For each mode: the model loads each worker made during
the run, the seconds the jobs spent loading, the jobs each worker ran, and the time from the
first submission to the last job's end. `--kill` kills one worker (kill -9) once a third of the
jobs have ended and checks that the jobs it held finish on the others, each once.

It needs Postgres and Redis, as the tests do: DATABASE_URL (default: a database `routing_bench` on
127.0.0.1, created when missing) and CELERY_BROKER_URL (default: Redis database 13, which it
flushes). Models, media and logs go to a temporary folder. The script itself is the reaper (beat's
round, every 2 s here): it requeues a killed worker's job and sends again what waits on its queue.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MODELS = {"tiny-flux": "flux", "tiny-sdxl": "sdxl", "tiny-sd3": "sd3"}
REAPER_SECONDS = 2
# A killed worker counts as gone this long after its last stamp (the studio's default is 30 s).
STALE_SECONDS = 4
RUN_LIMIT = 900  # seconds a mode may take before the script gives up


def environment(var: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "brandstudio.settings",
        "SECRET_KEY": "routing-benchmark",
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/routing_bench"),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/13"),
        "STUDIO_VAR_DIR": str(var),
        "STUDIO_MODELS_DIR": str(var / "models"),
        "MEDIA_ROOT": str(var / "media"),
        "STUDIO_PALETTE_TABLES_DIR": "",
        "HF_HUB_OFFLINE": "1",
        "STUDIO_HEARTBEAT_SECONDS": "1",
        "STUDIO_STALE_AFTER_SECONDS": str(STALE_SECONDS),
        "LOG_LEVEL": "INFO",
    }


def create_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def install_models(var: Path) -> int:
    """The three tiny models, registered; returns the largest folder's bytes (the memory budget)."""
    from django.core.management import call_command

    from generation.model_files import folder_size

    call_command("install_tiny_model", *MODELS.values(), stdout=open(os.devnull, "w"))  # noqa: SIM115
    return max(folder_size(var / "models" / key) for key in MODELS)


def make_jobs(count: int, users: int, seed: int, mix: list[float]) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    return [(n % users, rng.choices(list(MODELS), weights=mix)[0]) for n in range(count)]


class Workers:
    """Three `celery worker` processes (queues `gpu` and their own), one default model each."""

    def __init__(self, var: Path, env: dict[str, str], budget: int, routing: bool) -> None:
        from generation.management.commands.studio import worker_command

        self.logs: dict[str, Path] = {}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for n, model in enumerate(MODELS):
            node = f"gpu{n + 1}@bench"
            self.logs[node] = var / f"{node}-{'routing' if routing else 'today'}.log"
            extra = {
                "STUDIO_DEFAULT_MODEL": model,
                "STUDIO_ROUTING": "1" if routing else "0",
                "STUDIO_MEMORY_BUDGET_GB": repr(budget / 2**30),
                "OMP_NUM_THREADS": "1",  # three workers on this machine's cores
                "MKL_NUM_THREADS": "1",
            }
            self.procs[node] = subprocess.Popen(
                worker_command(name=node, queues="gpu"),
                cwd=ROOT,
                env={**os.environ, **env, **extra},
                stdout=self.logs[node].open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def loads(self) -> dict[str, int]:
        """Models each worker has loaded so far (the engines' "Loading <model> ..." line)."""
        pattern = re.compile(r"generation\.worker\.engines Loading ")
        return {node: len(pattern.findall(log.read_text(errors="replace"))) for node, log in self.logs.items()}

    def kill(self, node: str) -> None:
        os.killpg(self.procs[node].pid, signal.SIGKILL)
        self.procs[node].wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"Timed out waiting for {what}")
        time.sleep(0.2)


def reset(var: Path) -> None:
    import redis
    from django.conf import settings

    from generation.models import GenerationJob, WorkerState

    GenerationJob.objects.all().delete()
    WorkerState.objects.all().delete()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    shutil.rmtree(var / "media", ignore_errors=True)


def run_mode(
    var: Path, env: dict[str, str], budget: int, jobs: list[tuple[int, str]], *, routing: bool, kill: bool
) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth.models import User

    from generation.jobs import lifecycle, submit
    from generation.models import AssetPreset, GenerationJob, ImageModel, JobStatus, WorkerState

    reset(var)
    settings.STUDIO_ROUTING = routing  # this process dispatches (submissions) and reaps too
    preset, _ = AssetPreset.objects.get_or_create(
        slug="bench",
        defaults={"name": "Bench", "prompt_template": "{subject}", "default_width": 64, "default_height": 64},
    )
    AssetPreset.objects.filter(pk=preset.pk).update(allowed_sizes=[[64, 64]], steps=4)
    preset.refresh_from_db()
    users = [User.objects.get_or_create(username=f"designer{n}")[0] for n in range(max(u for u, _ in jobs) + 1)]
    models = {key: ImageModel.objects.get(key=key) for key in MODELS}
    workers = Workers(var, env, budget, routing)
    try:
        wait_for(
            lambda: (
                {(n, m) for n, m in zip(workers.logs, MODELS, strict=True)}
                <= {(row.node, key) for row in WorkerState.objects.all() for key in row.holds}
            ),
            timeout=180,
            what="the workers to preload their default models",
        )
        before = workers.loads()
        started = time.monotonic()
        for user, model in jobs:
            submit.job_create(
                owner=users[user], preset=preset, prompt="a flat circle", model=models[model], variations=1
            )
        killed: dict[str, Any] = {}
        last_reap = 0.0
        while True:
            ended = GenerationJob.objects.filter(status__in=[JobStatus.COMPLETE, JobStatus.FAILED]).count()
            if ended == len(jobs):
                break
            if time.monotonic() - started > RUN_LIMIT:
                raise SystemExit(f"{ended} of {len(jobs)} jobs ended in {RUN_LIMIT} s; the logs: {var}")
            if kill and not killed and ended >= len(jobs) // 3:
                killed = kill_one(workers)
            if time.monotonic() - last_reap > REAPER_SECONDS:
                lifecycle.jobs_reap_stale()
                lifecycle.dispatch_waiting()
                last_reap = time.monotonic()
            time.sleep(0.1)
        total = time.monotonic() - started
        after = workers.loads()
    finally:
        workers.stop()
    return report(before, after, total, killed)


def kill_one(workers: Workers) -> dict[str, Any]:
    """kill -9 the first worker, noting the jobs it held: the one it ran, those waiting on its queue."""
    from generation.models import GenerationJob, JobStatus

    node = next(iter(workers.procs))
    workers.kill(node)
    running = GenerationJob.objects.filter(status=JobStatus.PROCESSING, worker=node)
    waiting = GenerationJob.objects.filter(status=JobStatus.QUEUED, queue=f"{node}.dq")
    held = [*running.values_list("pk", flat=True), *waiting.values_list("pk", flat=True)]
    return {"node": node, "jobs": [str(pk) for pk in held]}


def report(before: dict[str, int], after: dict[str, int], total: float, killed: dict[str, Any]) -> dict[str, Any]:
    from generation.models import GeneratedImage, GenerationJob, JobStatus

    jobs = list(GenerationJob.objects.values("pk", "status", "worker", "attempts", "timings", "queue"))
    images = Counter(str(pk) for pk in GeneratedImage.objects.values_list("job_id", flat=True))
    result: dict[str, Any] = {
        "total_seconds": round(total, 1),
        "loads": {node: after[node] - before[node] for node in after},
        "load_seconds": round(sum(job["timings"].get("load", 0.0) for job in jobs), 2),
        "jobs_per_worker": dict(sorted(Counter(job["worker"] for job in jobs).items())),
        "sent_to_own_queue": sum(job["queue"].endswith(".dq") for job in jobs),
        "complete": sum(job["status"] == JobStatus.COMPLETE for job in jobs),
        "each_once": all(images[str(job["pk"])] == 1 for job in jobs),
    }
    result["total_loads"] = sum(result["loads"].values())
    if killed:
        held = [job for job in jobs if str(job["pk"]) in killed["jobs"]]
        result["killed"] = {
            "worker": killed["node"],
            "jobs_it_held": len(held),
            "finished_elsewhere": sum(
                job["status"] == JobStatus.COMPLETE and job["worker"] != killed["node"] for job in held
            ),
        }
    return result


def show(name: str, result: dict[str, Any]) -> None:
    print(f"{name}")
    print(f"    total time                 {result['total_seconds']:7.1f} s")
    loads = ", ".join(f"{node} {count}" for node, count in result["loads"].items())
    print(f"    model loads                {result['total_loads']:7d}     ({loads})")
    print(f"    seconds spent loading      {result['load_seconds']:7.2f} s   (the jobs' load phase, summed)")
    per = ", ".join(f"{node} {count}" for node, count in result["jobs_per_worker"].items())
    print(f"    jobs per worker            {per}")
    print(f"    sent to a worker's queue   {result['sent_to_own_queue']:7d}     (the rest to the shared queue)")
    print(f"    complete, each once        {result['complete']}, {result['each_once']}")
    if killed := result.get("killed"):
        print(
            f"    killed {killed['worker']}: it held {killed['jobs_it_held']} jobs; "
            f"{killed['finished_elsewhere']} finished on the other workers"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mix", default="1,1,1", help="the models' shares of the jobs, e.g. 6,2,2 (default: even)")
    parser.add_argument("--backlog", type=int, default=None, help="STUDIO_ROUTING_BACKLOG (default: the studio's)")
    parser.add_argument("--kill", action="store_true", help="kill -9 one worker a third of the way through")
    parser.add_argument("--json", action="store_true", help="one JSON line")
    args = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="studio-routing-"))
    env = environment(var)
    if args.backlog is not None:
        env["STUDIO_ROUTING_BACKLOG"] = str(args.backlog)
    os.environ.update(env)
    create_database(env["DATABASE_URL"])
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    budget = install_models(var)
    jobs = make_jobs(args.jobs, args.users, args.seed, [float(share) for share in args.mix.split(",")])
    try:
        results = {
            "today": run_mode(var, env, budget, jobs, routing=False, kill=args.kill),
            "routing": run_mode(var, env, budget, jobs, routing=True, kill=args.kill),
        }
    finally:
        shutil.rmtree(var, ignore_errors=True)
    setup: dict[str, Any] = {"cpus": os.cpu_count(), "jobs": args.jobs, "users": args.users, "workers": 3}
    setup |= {"models": list(MODELS), "model_mix": dict(Counter(model for _, model in jobs)), "seed": args.seed}
    setup["routing_backlog"] = settings.STUDIO_ROUTING_BACKLOG
    if args.json:
        print(json.dumps({"setup": setup, **results}))
        return
    print(f"Machine: {os.cpu_count()} CPU cores; 3 workers (1 torch thread each), each holding one model at a time")
    print(f"{args.jobs} jobs from {args.users} users: {setup['model_mix']}; 64x64, 4 steps, 1 image each\n")
    show("today's dispatch (STUDIO_ROUTING=0: every job on the shared queue)", results["today"])
    print()
    show("routing (a job to the worker holding its model)", results["routing"])


if __name__ == "__main__":
    main()
