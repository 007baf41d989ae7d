"""The catalogue staff edit in the admin: asset types, models, add-ons, upscalers, brand LoRAs and references."""

import re
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from simple_history.models import HistoricalRecords

from ..engine.families import accepts_pipeline, family_choices, has_edit, has_img2img, has_inpaint
from ..engine.options import option_errors
from ..finishing.inspect import EXTENSIONS, inspect_in_subprocess
from ..finishing.validators import validate_hex, validate_palette
from ..gguf_files import GgufError, check_gguf
from ..json_files import read_config
from ..lora_files import LoraError
from ..lora_layout import validate
from ..memory.cards import CardError, cards_of
from ..memory.plan import PlanError, plan_for, stored_problems
from ..speed.profile import card_problems
from ..uploads import UploadError, read_image


def validate_sizes(value: Any) -> None:
    """Allowed sizes are a list of [width, height] pairs, multiples of 16 within 64..4096."""
    if not isinstance(value, list) or not value:
        raise ValidationError("Give at least one size as a list of [width, height] pairs.")
    for size in value:
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) for n in size)):
            raise ValidationError(f"{size!r} is not a [width, height] pair of integers.")
        if not all(64 <= n <= 4096 and n % 16 == 0 for n in size):
            raise ValidationError(f"{size!r}: sides must be multiples of 16 between 64 and 4096.")


def validate_template(value: str) -> None:
    if "{subject}" not in value:
        raise ValidationError("The prompt template must contain {subject}.")


def validate_subjects(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(s, str) and 0 < len(s.strip()) <= 40 for s in value):
        raise ValidationError('Give the subjects as a list of short names, e.g. ["circle", "star"].')


def validate_test_prompts(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(p, str) and 0 < len(p.strip()) <= 500 for p in value):
        raise ValidationError('Give the test prompts as a list of descriptions, e.g. ["a paper plane"].')
    if len(value) > 50:
        raise ValidationError(f"At most 50 test prompts; these are {len(value)}.")


def size_label(width: int, height: int) -> str:
    return f"{width}x{height}"


def next_version(row: Any, fields: tuple[str, ...]) -> None:
    """One more than the saved row's version when any of `fields` changed (asset types, kits)."""
    if not row.pk:
        return
    before = type(row).objects.filter(pk=row.pk).values("version", *fields).first()
    if before and any(before[f] != getattr(row, f) for f in fields):
        row.version = before["version"] + 1


def validate_terms(value: Any) -> None:
    """Banned words and required terms: a list of short words or phrases."""
    if not isinstance(value, list) or not all(isinstance(t, str) and 0 < len(t.strip()) <= 60 for t in value):
        raise ValidationError('Give a list of words or short phrases, e.g. ["clipart", "photo"].')
    if len(value) > 200:
        raise ValidationError(f"At most 200 entries; these are {len(value)}.")


class BrandKit(models.Model):
    """The brand as the studio applies it, shared by one or more asset types: the palette and
    background finishing uses, the default style references, the words a description may not use
    and the terms every prompt carries, and the icon canvas (centred, with a safe area).
    Changing one makes a new version; every job records the version it used."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    # Correction, the compliance score, transparency and SVG colours come from it.
    palette = models.JSONField(
        default=list, blank=True, validators=[validate_palette], help_text='Brand colours, e.g. ["#0f6cbd", "#107c10"]'
    )
    background_colour = models.CharField(
        max_length=7, blank=True, validators=[validate_hex], help_text="The flat background the model draws on"
    )
    palette_tolerance = models.FloatField(
        "tolerance (ΔE2000)",
        default=10.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(50.0)],
        help_text="A pixel this close to a palette colour or the background counts as on-brand",
    )
    banned_words = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_terms],
        help_text='A description using one is refused, naming it, e.g. ["clipart", "photorealistic"]',
    )
    required_terms = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_terms],
        help_text='Added to every prompt that lacks them, e.g. ["flat vector"]',
    )
    safe_area = models.FloatField(
        "icon safe area",
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.4)],
        help_text="Icons: centre the subject on the background and keep this share of each side empty "
        "(0.1 = 10 %); 0: as drawn. Needs the background colour",
    )
    version = models.PositiveIntegerField(default=1, editable=False, help_text="Goes up with every change")
    history = HistoricalRecords()  # the audit trail, and the kit page's list of versions

    VERSIONED_FIELDS = (
        "palette",
        "background_colour",
        "palette_tolerance",
        "banned_words",
        "required_terms",
        "safe_area",
        "name",
        "description",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "brand kit"

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        next_version(self, self.VERSIONED_FIELDS)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.safe_area and not self.background_colour:
            raise ValidationError({"background_colour": "The icon safe area needs the background colour."})
        clash = {t.casefold() for t in self.banned_words} & {t.casefold() for t in self.required_terms}
        if clash:
            raise ValidationError({"required_terms": f"{', '.join(sorted(clash))}: both banned and required."})
        for asset_type in self.asset_types.all() if self.pk else []:
            asset_type.kit = self
            try:
                asset_type._check_palette()
            except ValidationError as exc:
                message = "; ".join(m for ms in exc.message_dict.values() for m in ms)
                raise ValidationError(f"{asset_type.name}: {message}") from None

    def bump(self, reason: str) -> None:
        """A new version for a change outside the kit's own fields (a brand reference), with why."""
        self.version += 1
        self._change_reason = reason  # simple-history records it with the version
        self.save(update_fields=["version"])

    def banned_in(self, text: str) -> list[str]:
        """The banned words or phrases `text` uses, as whole words, whatever the case."""
        return [word for word in self.banned_words if _term_pattern(word).search(text)]

    def with_required_terms(self, prompt: str) -> str:
        missing = [term for term in self.required_terms if not _term_pattern(term).search(prompt)]
        return ", ".join([prompt.rstrip(", "), *missing]) if missing else prompt

    def record(self) -> dict[str, Any]:
        """What a job freezes of it (params["kit"])."""
        return {"slug": self.slug, "name": self.name, "version": self.version}


def _term_pattern(term: str) -> re.Pattern[str]:
    words = [re.escape(w) for w in term.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class AssetPreset(models.Model):
    """One asset type of the brief (Icon, Product Illustration...), edited in the admin."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    prompt_template = models.TextField(validators=[validate_template])
    negative_prompt = models.TextField(blank=True)
    default_width = models.PositiveIntegerField(default=1024)
    default_height = models.PositiveIntegerField(default=1024)
    allowed_sizes = models.JSONField(default=list, validators=[validate_sizes])
    steps = models.PositiveIntegerField(default=28)
    guidance_scale = models.FloatField(default=3.5)
    use_refiner = models.BooleanField(default=False, help_text="High and Ultra refine the render (img2img)")
    refine_strength = models.FloatField(
        default=0.3,
        validators=[MinValueValidator(0.2), MaxValueValidator(0.4)],
        help_text="How much the refiner may change the render: 0.2 (detail only) to 0.4",
    )
    use_upscaler = models.BooleanField(default=False, help_text="High upscales 2x, Ultra 4x")
    upscaler = models.ForeignKey(
        "Upscaler",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="presets",
        help_text="Empty: the enabled upscaler of the tier's scale (Lanczos, named as such, when none is installed)",
    )
    # The brand it follows: palette and background (finishing), references, banned words, icon canvas.
    kit = models.ForeignKey(
        "BrandKit",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="asset_types",
        help_text="The brand kit: its palette, references and word rules. Empty: no palette, no rules",
    )
    correct_palette = models.BooleanField(default=False, help_text="Move flat areas to the nearest palette colour")
    compliance_floor = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Flag images whose compliance is below this share (0–1) in the grid; empty: no flag",
    )
    sharpen_radius = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(10.0)], help_text="Unsharp mask radius, px"
    )
    sharpen_amount = models.PositiveIntegerField(
        default=0, validators=[MaxValueValidator(500)], help_text="Unsharp mask strength in percent; 0: no sharpening"
    )
    transparent_background = models.BooleanField(
        default=False, help_text="Key out the background colour: PNG and WebP with an alpha channel"
    )
    trace_svg = models.BooleanField(default=False, help_text="Trace an SVG in the palette's colours")
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    version = models.PositiveIntegerField(default=1, editable=False, help_text="Goes up when what it renders changes")
    test_prompts = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_test_prompts],
        help_text='Fixed descriptions a new LoRA version is judged on, e.g. ["a paper plane"]',
    )
    history = HistoricalRecords()  # the audit trail (docs/operations.md)

    # Editing one of these changes what the asset type renders, so it makes a new version.
    VERSIONED_FIELDS = (
        "prompt_template",
        "negative_prompt",
        "default_width",
        "default_height",
        "allowed_sizes",
        "steps",
        "guidance_scale",
        "use_refiner",
        "refine_strength",
        "use_upscaler",
        "upscaler_id",
        "kit_id",
        "correct_palette",
        "compliance_floor",
        "sharpen_radius",
        "sharpen_amount",
        "transparent_background",
        "trace_svg",
    )

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        next_version(self, self.VERSIONED_FIELDS)
        super().save(*args, **kwargs)

    def clean(self) -> None:
        self._check_palette()
        sizes = [list(s) for s in self.allowed_sizes or []]
        if sizes and [self.default_width, self.default_height] not in sizes:
            raise ValidationError("The default size must be one of the allowed sizes.")
        # Sizes no enabled model can draw would only ever give the designer an error.
        largest = ImageModel.objects.filter(enabled=True).aggregate(models.Max("max_side"))["max_side__max"]
        too_big = [size_label(w, h) for w, h in sizes if largest and max(w, h) > largest]
        if too_big:
            raise ValidationError(
                {"allowed_sizes": f"No enabled model renders {', '.join(too_big)}; the largest side is {largest}."}
            )

    def _check_palette(self) -> None:
        kit = self.kit if self.kit_id else None
        needs = [label for on, label in [(self.correct_palette, "correction"), (self.trace_svg, "SVG tracing")] if on]
        if needs and not (kit and kit.palette):
            message = f"{' and '.join(needs).capitalize()} need a brand kit with at least one palette colour."
            raise ValidationError({"kit": message})
        if self.transparent_background and not (kit and kit.background_colour):
            raise ValidationError({"kit": "A transparent background needs a brand kit with a background colour."})

    @property
    def default_size(self) -> str:
        return size_label(self.default_width, self.default_height)

    @property
    def size_choices(self) -> list[str]:
        return [size_label(w, h) for w, h in self.allowed_sizes]

    def expand_prompt(self, subject: str) -> str:
        # Templates are multi-line in the admin; collapse them to one clean line.
        prompt = " ".join(self.prompt_template.replace("{subject}", subject.strip()).split())
        return self.kit.with_required_terms(prompt) if self.kit_id and self.kit else prompt


class ImageModel(models.Model):
    """A model the studio can run: registry data edited in the admin, not code.

    Weights come from `local_path` (a diffusers folder; relative paths are under
    STUDIO_MODELS_DIR) or from `repo_id` already in the workers' Hugging Face cache.
    """

    key = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    family = models.CharField(max_length=30, choices=family_choices)
    repo_id = models.CharField("Hugging Face repo id", max_length=200, blank=True)
    revision = models.CharField(max_length=100, blank=True, help_text="Commit or tag; empty = main")
    local_path = models.CharField(max_length=500, blank=True, help_text="A diffusers folder on the workers")
    license_name = models.CharField(max_length=100)
    commercial_use = models.BooleanField(help_text="Outputs may be used in products (production use)")
    license_notice = models.TextField(blank=True, help_text="Shown next to the model and on downloads")
    license_url = models.URLField(blank=True)
    default_steps = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: the asset type's steps")
    default_guidance = models.FloatField(null=True, blank=True, help_text="Empty: the asset type's guidance")
    max_side = models.PositiveIntegerField(default=2048, help_text="Largest width or height it renders")
    size_limits = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="What its own config allows (sizes a multiple of, largest side), read when it is saved here with "
        "its weights on this machine, or when `pull_model` downloads it; checked when a job is submitted",
    )
    # Whether the negative prompt acts comes from the family and the guidance (engine/families.py).
    # Starting from an image: "More like this" and sketches (generation/control/). What else a
    # model can be steered with comes from its family and its add-ons, not from checkboxes.
    supports_img2img = models.BooleanField(default=False)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text='Loading options for the family, e.g. {"memory_mode": "model_offload"} or, for HiDream, '
        '{"llama": "meta-llama/Llama-3.1-8B-Instruct"}',
    )
    for_testing = models.BooleanField(
        default=False, help_text="Random weights or a test fixture: only staff see it in the forms and the API"
    )
    subjects = models.JSONField(
        default=list,
        blank=True,
        help_text='What a small model knows how to draw, e.g. ["circle", "star"]: shown next to it in the picker; '
        "a description naming none of them gets a note under its result. Empty: it draws anything.",
        validators=[validate_subjects],
    )
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()  # the audit trail (docs/operations.md)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name

    def unknown_subject(self, prompt: str) -> bool:
        """True when this model only knows some subjects and the description names none of them."""
        words = set(re.findall(r"[a-z]+", prompt.lower()))
        return bool(self.subjects) and not any(set(subject.lower().split()) <= words for subject in self.subjects)

    def clean(self) -> None:
        self.options = {} if self.options is None else self.options  # the admin's emptied box
        if errors := option_errors(self.family, self.options):
            raise ValidationError({"options": errors})
        if bool(self.repo_id) == bool(self.local_path):
            raise ValidationError("Give either a Hugging Face repo id or a local folder, not both or neither.")
        if self.supports_img2img and not has_img2img(self.family):
            raise ValidationError(
                {"supports_img2img": f"The {self.get_family_display()} engine has no img2img pipeline."}
            )
        if self.local_path:
            self._check_local_pipeline()
        self._check_gguf()
        self._read_size_limits()
        self._check_memory_override()
        self._check_speed()

    @property
    def gguf_path(self) -> Path | None:
        """The GGUF transformer its `gguf` option names, under STUDIO_MODELS_DIR (None: none)."""
        name = (self.options or {}).get("gguf")
        return Path(settings.STUDIO_MODELS_DIR) / name if isinstance(name, str) and name else None

    def _check_gguf(self) -> None:
        if (path := self.gguf_path) is None:
            return
        if not path.is_file():
            raise ValidationError({"options": f"gguf: no file {path}; copy it there, then save."})
        try:
            check_gguf(path, self.family, self.get_family_display())
        except GgufError as exc:
            raise ValidationError({"options": f"gguf: {exc}"}) from None

    def _check_memory_override(self) -> None:
        """An entry's `memory` option must run, and fit, on every card the workers have
        (STUDIO_WORKER_CARDS): checked against the installed folder's components."""
        from ..model_files import gguf_choices, installed_components

        overrides = (self.options or {}).get("memory")
        if (components := installed_components(self)) is None:
            return  # not installed here: checked on the save after `pull_model`
        if not overrides and not any(c.stored for c in components):
            return
        try:
            cards = cards_of(settings.STUDIO_WORKER_CARDS)
        except CardError as exc:
            raise ValidationError({"options": f"STUDIO_WORKER_CARDS: {exc}"}) from None
        stored = [f"On the {card.name}: {problem}" for card in cards for problem in stored_problems(components, card)]
        if stored:  # the folder itself: saved in a precision a worker card cannot run
            raise ValidationError(stored)
        errors = []
        for card in cards:
            try:
                plan = plan_for(components, card, overrides=overrides, given=gguf_choices(self))
            except PlanError as exc:
                errors.append(f"On the {card.name}: {exc}")
                continue
            if not plan.fits:
                how = "with this memory override" if overrides else "even streamed"
                errors.append(f"On the {card.name} it does not fit {how}: {plan.summary()}.")
        if errors:
            raise ValidationError({"options": errors})

    def _check_speed(self) -> None:
        """A speed profile's attention backend must run on every card the workers have."""
        if not (speed := (self.options or {}).get("speed")):
            return
        try:
            cards = cards_of(settings.STUDIO_WORKER_CARDS)
        except CardError as exc:
            raise ValidationError({"options": f"STUDIO_WORKER_CARDS: {exc}"}) from None
        if problems := card_problems(speed, cards):
            raise ValidationError({"options": [f"speed: {problem}" for problem in problems]})

    def _read_size_limits(self) -> None:
        from ..model_files import installed_size_limits

        # Not installed yet (a repo not pulled): no limits known until `pull_model` or the next save.
        self.size_limits = installed_size_limits(self)

    @property
    def supports_edit(self) -> bool:
        """Instruction edits come with the family's pipeline (generation/engine/families.py)."""
        return has_edit(self.family)

    @property
    def supports_inpaint(self) -> bool:
        """Repainting a mask comes with the family's inpaint pipeline (generation/engine/families.py)."""
        return has_inpaint(self.family)

    def renders(self, width: int, height: int) -> str:
        """Why the model cannot draw this size, for the designer; "" when it can."""
        limits = self.size_limits or {}
        largest = min(self.max_side, limits.get("max_side") or self.max_side)
        if max(width, height) > largest:
            return f"{self.name} renders up to {largest}×{largest}"
        multiple = limits.get("multiple") or 1
        if width % multiple or height % multiple:
            return f"{self.name} renders sizes in multiples of {multiple}"
        return ""

    def _check_local_pipeline(self) -> None:
        index = self.resolved_local_path / "model_index.json"
        try:
            class_name = read_config(index).get("_class_name", "")
        except (OSError, ValueError):
            raise ValidationError(
                {"local_path": f"No readable diffusers model_index.json in {index.parent}."}
            ) from None
        if not accepts_pipeline(self.family, class_name):
            raise ValidationError(
                {"family": f"That folder holds a {class_name}, which the {self.family} engine does not load."}
            )

    @property
    def resolved_local_path(self) -> Path:
        return Path(settings.STUDIO_MODELS_DIR) / self.local_path

    @property
    def source(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "") if self.repo_id else self.local_path


def brand_reference_upload_to(reference: "BrandReference", filename: str) -> str:
    return f"brand-references/{reference.kit_id}/{uuid.uuid4().hex}.png"


class BrandReference(models.Model):
    """A brand kit's look as an image: every job of its asset types on a model that takes style
    references (an IP-Adapter add-on) follows these, unless the designer gives their own or turns
    them off. Seen by every designer: they are the brand's own."""

    kit = models.ForeignKey(BrandKit, on_delete=models.CASCADE, related_name="brand_references")
    file = models.ImageField(upload_to=brand_reference_upload_to, max_length=300)
    name = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()  # the audit trail (docs/operations.md)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self) -> str:
        return self.name or f"brand reference {self.pk}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        before = BrandReference.objects.filter(pk=self.pk).values("file", "enabled").first() if self.pk else None
        super().save(*args, **kwargs)
        if before is None or before != {"file": self.file.name, "enabled": self.enabled}:
            self.kit.bump(f"brand reference {'added' if before is None else 'changed'}: {self}")

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        kit, name = self.kit, str(self)
        deleted = super().delete(*args, **kwargs)
        kit.bump(f"brand reference removed: {name}")
        return deleted

    def clean(self) -> None:
        if not self.file:
            return
        self.file.seek(0)
        try:
            read_image(self.file.read(20 * 2**20 + 1), max_bytes=20 * 2**20, max_pixels=4096 * 4096)
        except UploadError as exc:
            raise ValidationError({"file": str(exc)}) from None
        self.file.seek(0)
        enabled = self.kit.brand_references.filter(enabled=True).exclude(pk=self.pk).count() if self.kit_id else 0
        if self.enabled and enabled >= 4:
            raise ValidationError("A brand kit has at most 4 brand references; turn one off first.")


class AddOnKind(models.TextChoices):
    IP_ADAPTER = "ip_adapter", "IP-Adapter (style references)"
    CONTROLNET = "controlnet", "ControlNet (a sketch's structure)"
    DEPTH_ESTIMATOR = "depth_estimator", "Depth estimator (a sketch's depth, for depth ControlNets)"
    CAPTIONER = "captioner", "Captioner (writes a training set's missing captions)"


class ControlType(models.TextChoices):
    CANNY = "canny", "Canny edges"
    TILE = "tile", "Tile (layout and colours)"
    DEPTH = "depth", "Depth map"


class AddOn(models.Model):
    """Weights a model family is steered with (an IP-Adapter for style references), loaded once
    per worker and attached per job, like a LoRA. What a model can do comes from its family and
    the add-ons registered for it here. Relative folders are under STUDIO_MODELS_DIR."""

    key = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=AddOnKind.choices, default=AddOnKind.IP_ADAPTER)
    family = models.CharField(
        max_length=20,
        choices=family_choices,
        blank=True,
        help_text="Blank for a depth estimator or a captioner: they serve every family",
    )
    local_path = models.CharField(
        max_length=500,
        help_text="A folder on the workers with the weights and, for an IP-Adapter, image_encoder/; for a depth "
        "estimator, a transformers depth-estimation folder (config.json, preprocessor_config.json, weights); "
        "for a captioner, a transformers image-text-to-text folder (Florence-2, BLIP, Qwen2.5-VL...)",
    )
    weight_name = models.CharField(
        max_length=200, default="ip-adapter.safetensors", help_text="An IP-Adapter's file; unused for a ControlNet"
    )
    control_type = models.CharField(
        max_length=10, choices=ControlType.choices, blank=True, help_text="What a ControlNet was trained on"
    )
    license_name = models.CharField(max_length=100)
    commercial_use = models.BooleanField(help_text="Outputs made with it may be used in products")
    license_notice = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    for_testing = models.BooleanField(default=False, help_text="Random weights or a test fixture")
    history = HistoricalRecords()  # the audit trail (docs/operations.md)

    class Meta:
        ordering = ["family", "name"]
        verbose_name = "add-on"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}, {self.get_family_display()})"

    @property
    def resolved_local_path(self) -> Path:
        return Path(settings.STUDIO_MODELS_DIR) / self.local_path

    def clean(self) -> None:
        from ..control.addons import addon_problems

        if problems := addon_problems(self):
            raise ValidationError({"local_path": problems})


class Upscaler(models.Model):
    """A super-resolution model file (Real-ESRGAN, 4x-UltraSharp, SwinIR, HAT, DAT...) that the
    workers load with spandrel; relative paths are under STUDIO_UPSCALERS_DIR. Its scale and
    architecture are read from the file when it is saved here."""

    key = models.SlugField(unique=True)
    name = models.CharField(max_length=100)
    file = models.CharField(max_length=500, help_text="A .pth or .safetensors file on the workers")
    scale = models.PositiveSmallIntegerField(editable=False, default=0, help_text="Read from the file")
    architecture = models.CharField(max_length=50, editable=False, blank=True, help_text="Read from the file")
    supports_half = models.BooleanField(editable=False, default=False, help_text="Read from the file")
    license_name = models.CharField(max_length=100)
    commercial_use = models.BooleanField(help_text="Outputs may be used in products")
    license_notice = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    history = HistoricalRecords()  # the audit trail (docs/operations.md)

    class Meta:
        ordering = ["scale", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.scale}x)" if self.scale else self.name

    @property
    def path(self) -> Path:
        return Path(settings.STUDIO_UPSCALERS_DIR) / self.file

    def clean(self) -> None:
        """The file is inside the upscalers folder and spandrel loads it as a super-resolution
        model; its scale, architecture and half-precision support are read from it. The file is
        read in a child process (inspect_in_subprocess): the web process never imports torch."""
        root = Path(settings.STUDIO_UPSCALERS_DIR).resolve()
        if Path(self.file).is_absolute():
            raise ValidationError({"file": "Give the file's path inside the upscalers folder, not an absolute path."})
        path = (root / self.file).resolve()
        if not path.is_relative_to(root):
            raise ValidationError({"file": "The upscaler must be a file inside the upscalers folder."})
        if path.suffix.lower() not in EXTENSIONS or not path.is_file():
            raise ValidationError({"file": f"No .pth or .safetensors file at {self.file} in the upscalers folder."})
        try:
            info = inspect_in_subprocess(path)
        except ValueError as exc:
            raise ValidationError({"file": str(exc)}) from None
        self.scale, self.architecture, self.supports_half = info["scale"], info["architecture"], info["half"]


class BrandLora(models.Model):
    """A brand LoRA file under loras/<family>/, checked when an admin saves it."""

    name = models.CharField(max_length=100)
    family = models.CharField(max_length=30, choices=family_choices)
    file = models.CharField(max_length=300, unique=True, help_text="Under loras/, e.g. flux/icons-v1.safetensors")
    trigger_words = models.CharField(max_length=200, blank=True, help_text="Put in front of every prompt")
    file_format = models.CharField(max_length=30, blank=True, editable=False)
    # Checked at save against each installed model of the family: the keys it fits, and why not the rest.
    fits = models.JSONField(default=list, blank=True, editable=False)
    fit_notes = models.JSONField(default=list, blank=True, editable=False)
    description = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True)
    # Set for versions the studio trained: which asset type, which version, how (metadata file).
    preset = models.ForeignKey(
        AssetPreset, null=True, blank=True, on_delete=models.SET_NULL, related_name="trained_loras"
    )
    version = models.PositiveIntegerField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    history = HistoricalRecords()  # the audit trail (docs/operations.md)

    class Meta:
        ordering = ["family", "name"]
        verbose_name = "brand LoRA"

    def __str__(self) -> str:
        return f"{self.name} ({self.get_family_display()})"

    @property
    def path(self) -> Path:
        return Path(settings.STUDIO_LORA_ROOT) / self.file

    def clean(self) -> None:
        from ..model_files import installed_folders

        root = Path(settings.STUDIO_LORA_ROOT).resolve()
        path = (root / self.file).resolve()
        if not path.is_relative_to(root):
            raise ValidationError({"file": "The LoRA must be a file inside the loras/ folder."})
        if path.suffix != ".safetensors" or not path.is_file():
            raise ValidationError({"file": f"No .safetensors file at loras/{self.file}."})
        try:
            self.file_format, self.fits, self.fit_notes = validate(
                path, family=self.family, labels=dict(family_choices()), models=installed_folders(self.family)
            )
        except LoraError as exc:
            raise ValidationError({"file": str(exc)}) from None

    def fits_model(self, key: str) -> bool:
        """Whether a job on that model may apply it: it fitted when saved (no record: not checked)."""
        return not self.fits or key in self.fits


class PresetLora(models.Model):
    """A LoRA an asset type applies, with its strength. Several combine (style + subject)."""

    preset = models.ForeignKey(AssetPreset, on_delete=models.CASCADE, related_name="preset_loras")
    lora = models.ForeignKey(BrandLora, on_delete=models.PROTECT, related_name="preset_loras")
    strength = models.FloatField(default=0.85)
    position = models.PositiveSmallIntegerField(default=0)
    history = HistoricalRecords()  # the audit trail (docs/operations.md)

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["preset", "lora"], name="lora_once_per_preset")]

    def __str__(self) -> str:
        return f"{self.lora.name} × {self.strength}"

    def clean(self) -> None:
        if not -2.0 <= self.strength <= 2.0:
            raise ValidationError({"strength": "Use a strength between -2 and 2 (usually 0.5 to 1)."})
        lora = self.lora if self.lora_id else None
        if lora is None:
            return
        if not lora.path.is_file():
            raise ValidationError({"lora": f"{lora.name}: its file loras/{lora.file} is missing."})
        if not ImageModel.objects.filter(family=lora.family).exists():
            family = lora.get_family_display()
            raise ValidationError({"lora": f"{lora.name} is for {family}, and no model of that family is registered."})
