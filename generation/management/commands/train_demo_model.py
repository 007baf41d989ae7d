import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from generation.devtools.demo_model import Plan, refit_model_decoder, train_demo_model
from generation.models import AssetPreset


class Command(BaseCommand):
    help = (
        "Train the offline demo brand model from scratch on the demo kit (Fluent filled glyphs; CPU, about "
        "two hours on 2 cores) and write it to --out (default: the folder `./studio up` installs it from). "
        "Progress is checkpointed in --checkpoints: run it again to resume."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--out", type=Path, default=settings.BASE_DIR / "demo" / "brand-model")
        parser.add_argument("--checkpoints", type=Path, default=Path(settings.VAR_DIR) / "demo-training")
        parser.add_argument("--subjects", type=int, default=Plan.subjects)
        parser.add_argument("--vae-steps", type=int, default=Plan.vae_steps)
        parser.add_argument("--transformer-steps", type=int, default=Plan.transformer_steps)
        parser.add_argument("--batch", type=int, default=Plan.batch)
        parser.add_argument("--decoder-steps", type=int, default=Plan.decoder_steps)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument(
            "--refit-decoder",
            action="store_true",
            help="Only refit the VAE decoder of the model already in --out (minutes; the latents, and so "
            "the transformer, stay as they are).",
        )

    def handle(self, *args: Any, out: Path | str, checkpoints: Path, refit_decoder: bool, **options: Any) -> None:
        from generation.devtools.glyphs import GlyphError

        out = Path(out)
        templates = list(AssetPreset.objects.values_list("prompt_template", flat=True))
        fields = ("subjects", "vae_steps", "decoder_steps", "transformer_steps", "batch", "seed")
        plan = Plan(**{field: options[field] for field in fields})
        started = time.monotonic()
        last = [0.0]

        def report(stage: str, step: int, total: int, loss: float) -> None:
            if step == total or time.monotonic() - last[0] > 15:
                last[0] = time.monotonic()
                self.stdout.write(f"{stage:11} step {step:5}/{total} loss {loss:.4f}  ({last[0] - started:.0f} s)")

        if refit_decoder and not (out / "vae" / "config.json").is_file():
            raise CommandError(f"{out} holds no trained demo model whose decoder could be refitted.")
        out.parent.mkdir(parents=True, exist_ok=True)
        # Train beside the target and move it in whole: a half-written model is never installed.
        with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
            try:
                if refit_decoder:
                    built = refit_model_decoder(out, Path(scratch) / "model", plan=plan, report=report)
                else:
                    built = train_demo_model(
                        Path(scratch) / "model", templates=templates, plan=plan, report=report, checkpoints=checkpoints
                    )
            except GlyphError as exc:
                raise CommandError(str(exc)) from None
            for path in [built, *built.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)  # savers may write 0600: every worker reads it
            if out.exists():
                shutil.rmtree(out)
            built.rename(out)
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 2**20
        minutes = (time.monotonic() - started) / 60
        self.stdout.write(self.style.SUCCESS(f"Trained the demo model into {out} ({size:.1f} MB) in {minutes:.1f} min"))
