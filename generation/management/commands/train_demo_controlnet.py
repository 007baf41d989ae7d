import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation.devtools.demo_controlnet import ControlPlan, train_demo_controlnet
from generation.models import AssetPreset


class Command(BaseCommand):
    help = (
        "Train the demo brand model's canny ControlNet on the glyph kit (CPU, about half an hour on 2 cores) and "
        "write it to --out (default: the folder `./studio up` installs it from). Progress is checkpointed in "
        "--checkpoints: run it again to resume."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--model", type=Path, default=Path(settings.STUDIO_DEMO_MODEL_DIR))
        parser.add_argument("--out", type=Path, default=Path(settings.STUDIO_DEMO_CONTROLNET_DIR))
        parser.add_argument("--checkpoints", type=Path, default=Path(settings.VAR_DIR) / "demo-controlnet-training")
        parser.add_argument("--steps", type=int, default=ControlPlan.steps)
        parser.add_argument("--batch", type=int, default=ControlPlan.batch)
        parser.add_argument("--learning-rate", type=float, default=ControlPlan.learning_rate)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, model: Path, out: Path, checkpoints: Path, **options: Any) -> None:
        from generation.devtools.glyphs import GlyphError

        out = Path(out)
        templates = list(AssetPreset.objects.values_list("prompt_template", flat=True))
        plan = ControlPlan(**{field: options[field] for field in ("steps", "batch", "learning_rate", "seed")})
        started, last = time.monotonic(), [0.0]

        def report(stage: str, step: int, total: int, loss: float) -> None:
            if step == total or time.monotonic() - last[0] > 15:
                last[0] = time.monotonic()
                self.stdout.write(f"{stage} step {step:5}/{total} loss {loss:.4f}  ({last[0] - started:.0f} s)")

        out.parent.mkdir(parents=True, exist_ok=True)
        # Trained beside the target and moved in whole: a half-written ControlNet is never installed.
        with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
            try:
                built = train_demo_controlnet(
                    Path(model),
                    Path(scratch) / "controlnet",
                    templates=templates,
                    plan=plan,
                    report=report,
                    checkpoints=checkpoints,
                )
            except (GlyphError, ValueError) as exc:
                raise CommandError(str(exc)) from None
            for path in [built, *built.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            if out.exists():
                shutil.rmtree(out)
            built.rename(out)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
        minutes = (time.monotonic() - started) / 60
        self.stdout.write(
            self.style.SUCCESS(f"Trained the demo ControlNet into {out} ({size:.1f} MB) in {minutes:.1f} min")
        )
