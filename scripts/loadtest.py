"""Simulated designers against a running studio, through the REST API, on loopback.

Each designer submits jobs and polls their status every second until they end, as the
studio's pages and the Figma plugin do. Prints p50 / p95 / max latency of status polls and
submissions, errors, and whether every submitted job completed.

    ./studio manage load_users --count 100 > var/load-tokens.json
    .venv/bin/python scripts/loadtest.py --url http://127.0.0.1:8000 --tokens var/load-tokens.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx

ENDED = {"complete", "failed", "cancelled"}


class Recorder:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.jobs: dict[str, str] = {}
        self.lock = threading.Lock()

    def timed(self, kind: str, client: httpx.Client, method: str, path: str, **kwargs: object) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            with self.lock:
                self.errors.append(f"{kind}: {exc.__class__.__name__}")
            return None
        elapsed = time.perf_counter() - started
        with self.lock:
            self.latency[kind].append(elapsed)
            if response.status_code >= 400:
                self.errors.append(f"{kind}: HTTP {response.status_code} {response.text[:120]}")
        return response


def designer(url: str, token: str, jobs: int, asset_type: str, record: Recorder, rng: random.Random) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url.rstrip("/") + "/api/v1", headers=headers, timeout=30) as client:
        time.sleep(rng.uniform(0, 5))  # people do not all click at once
        for n in range(jobs):
            body = {"asset_type": asset_type, "description": f"a flat blue circle icon {n}", "variations": 1}
            response = record.timed("submit", client, "POST", "/jobs", json=body)
            if response is None or response.status_code != 202:
                continue
            job = response.json()
            with record.lock:
                record.jobs[job["id"]] = job["status"]
            while job["status"] not in ENDED:
                time.sleep(1.0)
                polled = record.timed("status", client, "GET", f"/jobs/{job['id']}")
                if polled is not None and polled.status_code == 200:
                    job = polled.json()
            with record.lock:
                record.jobs[job["id"]] = job["status"]
            time.sleep(rng.uniform(1, 3))  # look at the result before the next one


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else (values[0] if values else 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--tokens", type=Path, required=True, help="JSON list of API tokens, one per designer")
    parser.add_argument("--jobs", type=int, default=3, help="jobs per designer")
    parser.add_argument("--asset-type", default="icon")
    args = parser.parse_args()
    tokens = json.loads(args.tokens.read_text())
    record = Recorder()
    threads = [
        threading.Thread(
            target=designer, args=(args.url, token, args.jobs, args.asset_type, record, random.Random(n)), daemon=True
        )
        for n, token in enumerate(tokens)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    seconds = time.perf_counter() - started
    print(f"{len(tokens)} designers, {args.jobs} jobs each, {seconds:.0f} s")
    for kind in ("status", "submit"):
        values = record.latency[kind]
        if values:
            print(
                f"  {kind:7} {len(values):6} requests  p50 {percentile(values, 50) * 1000:6.1f} ms"
                f"  p95 {percentile(values, 95) * 1000:6.1f} ms  max {max(values) * 1000:6.1f} ms"
            )
    done = sum(status == "complete" for status in record.jobs.values())
    print(f"  errors {len(record.errors)}; jobs submitted {len(record.jobs)}, completed {done}")
    for error in record.errors[:10]:
        print("   ", error)


if __name__ == "__main__":
    main()
