import filecmp
import shutil
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from ...models import AssetPreset

DEMO_CONTROLNET = "demo-canny"  # its folder under STUDIO_MODELS_DIR and its add-on's key


class Command(BaseCommand):
    help = (
        "Install the offline models the embedded studio uses, if missing: the demo brand model "
        "(shipped in demo/brand-model, trained by `manage.py train_demo_model`), its canny ControlNet "
        "(demo/brand-controlnet-canny, `manage.py train_demo_controlnet`; registered as an add-on) and the "
        "tiny random-weight FLUX (built here)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="Reinstall and rebuild even if present.")

    def handle(self, *args: Any, force: bool = False, **options: Any) -> None:
        models_dir = Path(settings.STUDIO_MODELS_DIR)
        models_dir.mkdir(parents=True, exist_ok=True)
        demo = models_dir / "demo-brand"
        # A checkout that ships a newer demo model replaces the copy an earlier version installed.
        self._install(demo, force or _differs(Path(settings.STUDIO_DEMO_MODEL_DIR), demo), self._copy_demo)
        self._install(models_dir / "tiny-flux", force, self._build_tiny)
        self._sync_subjects(demo)
        self._install_controlnet(models_dir / DEMO_CONTROLNET, force)

    def _install_controlnet(self, target: Path, force: bool) -> None:
        """The demo model's canny ControlNet, copied like the model and registered as its add-on
        (a checkout without it goes on without: the sketch box then offers img2img alone)."""
        from generation.models import AddOn, AddOnKind

        source = Path(settings.STUDIO_DEMO_CONTROLNET_DIR)
        if not (source / "config.json").is_file():
            self.stdout.write(f"No demo ControlNet in {source}: sketches on the demo model start from them only")
            return
        stale = force or _differs(source, target, marker="config.json")
        self._install(target, stale, lambda folder: Path(shutil.copytree(source, folder)), marker="config.json")
        # Registered once: an admin who turns it off or renames it keeps that across restarts.
        AddOn.objects.get_or_create(
            key=DEMO_CONTROLNET,
            defaults={
                "name": "Demo canny ControlNet",
                "kind": AddOnKind.CONTROLNET,
                "control_type": "canny",
                "family": "flux",
                "local_path": DEMO_CONTROLNET,
                "license_name": "MIT (trained here on Fluent UI System Icons)",
                "commercial_use": True,
                "enabled": True,
            },
        )

    def _sync_subjects(self, folder: Path) -> None:
        """The demo model's registry entry lists the subjects its card says it was taught."""
        from generation.devtools.demo_kit import read_kit_card
        from generation.models import ImageModel

        card = read_kit_card(folder)
        if card:
            ImageModel.objects.filter(key="demo-brand").exclude(subjects=list(card["subjects"])).update(
                subjects=list(card["subjects"])
            )

    def _install(self, target: Path, force: bool, make: Any, *, marker: str = "model_index.json") -> None:
        install_folder(target, force, make, self.stdout, self.style, marker=marker)

    def _copy_demo(self, folder: Path) -> Path:
        source = Path(settings.STUDIO_DEMO_MODEL_DIR)
        if (source / "model_index.json").is_file():
            return Path(shutil.copytree(source, folder))
        # A checkout without the shipped weights trains them once (about 1.5 hours on 2 cores).
        from generation.devtools.demo_model import train_demo_model

        self.stdout.write(f"No demo model in {source}: training it now (about 1.5 hours on 2 CPU cores)")
        templates = list(AssetPreset.objects.values_list("prompt_template", flat=True))
        return train_demo_model(folder, templates=templates)

    def _build_tiny(self, folder: Path) -> Path:
        from generation.devtools.tiny import build_tiny_flux

        return build_tiny_flux(folder)


def install_folder(
    target: Path, force: bool, make: Any, stdout: Any, style: Any, *, marker: str = "model_index.json"
) -> None:
    """`make(folder)` builds a model folder unless `target` holds one already (or `force`)."""
    if (target / marker).is_file() and not force:
        stdout.write(f"Model already at {target}")
        return
    # Made beside the target and moved in whole, so a half-written folder is never loaded.
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        made = make(Path(scratch) / "model")
        if target.exists():
            shutil.rmtree(target)
        made.rename(target)
    stdout.write(style.SUCCESS(f"Installed {target}"))


def _differs(source: Path, target: Path, *, marker: str = "model_index.json") -> bool:
    """True when the shipped model's files are not those installed: other names, sizes or bytes
    (a refitted decoder keeps its file's size)."""
    if not (source / marker).is_file() or not (target / marker).is_file():
        return False
    listing = _listing(source)
    if listing != _listing(target):
        return True
    return any(not filecmp.cmp(source / name, target / name, shallow=False) for name in listing)


def _listing(folder: Path) -> dict[str, int]:
    return {str(f.relative_to(folder)): f.stat().st_size for f in folder.rglob("*") if f.is_file()}
