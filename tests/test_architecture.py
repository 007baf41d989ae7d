"""The house rules of docs/architecture.md, checked on every module's imports (as written, function
bodies included) and on the Celery configuration. Run alone: `./studio test tests/test_architecture.py`."""

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest
from django.conf import settings

import generation
from generation import tasks
from generation.jobs import lifecycle

ROOT = Path(generation.__file__).resolve().parent
URLCONFS = {"generation.urls", "brandstudio.urls"}
# What the engine may import of the app besides itself: the LoRA file readers (pure Python).
ENGINE_MAY_IMPORT = {"generation.lora_files", "generation.lora_layout"}
# Packages of the web side: the web process imports them, so they never import the worker's code.
WEB_SIDE = (
    "generation.jobs",
    "generation.models",
    "generation.routing",
    "generation.api",
    "generation.views",
    "generation.forms",
    "generation.review",
)
ENQUEUE_CALLS = {"delay", "apply_async", "send_task", "delay_on_commit", "apply"}
MAY_ENQUEUE = {"generation.jobs.lifecycle", "generation.training.services", "generation.review.services"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules() -> dict[str, Path]:
    paths = [p for p in ROOT.rglob("*.py") if "migrations" not in p.parts]
    paths += [ROOT.parent / "brandstudio" / name for name in ("urls.py", "settings.py", "celery.py")]
    return {module_name(p): p for p in paths}


MODULES = app_modules()
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def imports_of(name: str) -> set[str]:
    """Every module `name` imports, resolved to dotted names, anywhere in the file."""
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES}
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_every_module_of_the_app_imports() -> None:
    names = [m.name for m in pkgutil.walk_packages(generation.__path__, "generation.") if ".migrations" not in m.name]
    for name in names:
        importlib.import_module(name)
    assert set(names) | {"generation"} | URLCONFS | {"brandstudio.settings", "brandstudio.celery"} >= set(MODULES)


def test_nothing_but_the_urlconfs_imports_the_pages_module() -> None:
    importers = {name for name in MODULES if "generation.views" in imports_of(name)}
    assert importers <= URLCONFS, importers


def test_the_engine_imports_nothing_of_the_app_outside_the_engine_and_the_lora_readers() -> None:
    for name in (n for n in MODULES if within(n, "generation.engine")):
        app = {m for m in imports_of(name) if within(m, "generation") and not within(m, "generation.engine")}
        assert app <= ENGINE_MAY_IMPORT | {"generation"}, (name, app - ENGINE_MAY_IMPORT)


def test_the_web_side_never_imports_the_worker_the_tasks_or_the_devtools() -> None:
    for name in (n for n in MODULES if any(within(n, side) for side in WEB_SIDE)):
        upward = {
            m
            for m in imports_of(name)
            if any(within(m, p) for p in ("generation.worker", "generation.tasks", "generation.devtools"))
        }
        assert not upward, (name, upward)


def test_the_job_side_never_imports_pages_or_the_api() -> None:
    for name in (n for n in MODULES if within(n, "generation.jobs") or within(n, "generation.models")):
        upward = {m for m in imports_of(name) if within(m, "generation.api") or within(m, "generation.views")}
        assert not upward, (name, upward)


def test_only_the_lifecycle_and_the_training_and_review_services_enqueue_tasks() -> None:
    senders = set()
    for name, tree in TREES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ENQUEUE_CALLS:
                senders.add(name)
    assert senders <= MAY_ENQUEUE, senders - MAY_ENQUEUE


def celery_tasks() -> dict[str, object]:
    return {task.name: task for task in vars(tasks).values() if hasattr(task, "name") and hasattr(task, "delay")}


def test_every_task_has_a_route() -> None:
    routed = set(settings.CELERY_TASK_ROUTES)
    assert celery_tasks() and set(celery_tasks()) <= routed, set(celery_tasks()) - routed


def test_every_task_the_lifecycle_sends_is_defined_and_goes_to_its_queue() -> None:
    sent = {lifecycle.RUN: "gpu", lifecycle.FINISH: "gpu", lifecycle.DEPTH_PREVIEW: "gpu", lifecycle.TRAIN: "training"}
    assert set(sent) <= set(celery_tasks())
    assert {name: settings.CELERY_TASK_ROUTES[name]["queue"] for name in sent} == sent


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_function_level_import_of_the_app_says_why(name: str) -> None:
    """Rule 4: an import inside a function is for a heavy library (torch, numpy...) and says so; a
    circle is broken by moving code, not hidden in a function body. Known exceptions are listed in
    docs/architecture.md under "Circles that remain"."""
    lines = MODULES[name].read_text().splitlines()
    for func in (n for n in ast.walk(TREES[name]) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom) and node.level and (name, node.module) not in KNOWN_CIRCLES:
                assert said_why(lines, node.lineno), f"{name}:{node.lineno} imports .{node.module} in a function"


def said_why(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line, or above the block of imports it belongs to."""
    if "#" in lines[lineno - 1]:
        return True
    above = lineno - 2
    while above >= 0 and (lines[above].strip().startswith(("from ", "import ")) or not lines[above].strip()):
        if "#" in lines[above]:
            return True
        above -= 1
    return above >= 0 and lines[above].strip().startswith("#")


# (module, what it imports in a function) where the import breaks a circle that remains: docs/architecture.md.
KNOWN_CIRCLES: set[tuple[str, str | None]] = {
    ("generation.models.catalogue", "model_files"),  # a model's clean() checks its files; they read the registry
    ("generation.models.catalogue", "control.addons"),  # an add-on's clean(); addons query AddOn
    ("generation.control.depth", "addons"),  # one capability's three modules: which sketch modes the
    ("generation.control.sketch", "addons"),  # add-ons installed allow, and the depth preview's files
    ("generation.control.sketch", "depth"),  # checked as add-ons are
    ("generation.control.sketch", "models"),  # the benchmark scripts use sketch.py without Django
}
