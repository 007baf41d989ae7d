"""The Azure workers scale on what the studio puts in Redis: a KEDA list rule for every queue a
GPU worker takes, and one for the list a training worker keeps its marker in."""

import re
from pathlib import Path

from django.conf import settings

BICEP = (Path(__file__).resolve().parents[2] / "deploy" / "azure" / "main.bicep").read_text()


def watched_lists() -> set[str]:
    names = set(re.findall(r"listName: '([\w-]+)'", BICEP))
    variables = dict(re.findall(r"^var (\w+) = '([\w-]+)'$", BICEP, re.MULTILINE))
    return names | {variables[name] for name in re.findall(r"listName: (\w+)", BICEP)}


def test_every_queue_a_gpu_worker_takes_has_a_scale_rule() -> None:
    queues = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} - {"maintenance"}
    assert queues == {"gpu", "training"} and queues <= watched_lists()


def test_the_keepalive_list_the_apps_are_given_is_the_one_a_rule_watches() -> None:
    [given] = re.findall(r"name: 'STUDIO_KEEPALIVE_LIST', value: (\w+)", BICEP)
    value = re.search(rf"^var {given} = '([\w-]+)'$", BICEP, re.MULTILINE)
    assert value is not None and value.group(1) in watched_lists() and value.group(1) not in {"gpu", "training"}
