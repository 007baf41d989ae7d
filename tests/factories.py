import uuid

import factory
from django.contrib.auth import get_user_model

from generation.jobs import recipe
from generation.jobs.lease import Lease
from generation.models import AssetPreset, BrandKit, GenerationJob, ImageModel, JobStatus

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)


class BrandKitFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BrandKit
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"test-kit-{n}")
    name = factory.Sequence(lambda n: f"Test kit {n}")


class AssetPresetFactory(factory.django.DjangoModelFactory):
    """A preset sized for tests: 64x64 images and few steps keep the tiny model fast."""

    class Meta:
        model = AssetPreset
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"test-preset-{n}")
    name = factory.Sequence(lambda n: f"Test preset {n}")
    prompt_template = "{subject}, flat icon"
    negative_prompt = "blurry"
    default_width = 64
    default_height = 64
    allowed_sizes = [[64, 64], [128, 64]]
    steps = 4
    guidance_scale = 3.5


class GenerationJobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationJob

    owner = factory.SubFactory(UserFactory)
    preset = factory.SubFactory(AssetPresetFactory)
    model_key = "tiny-flux"
    prompt = "a blue circle"
    images_total = 2
    params = factory.LazyAttribute(
        lambda o: recipe.resolve_params(
            preset=o.preset,
            model=ImageModel.objects.get(key="tiny-flux"),
            prompt=o.prompt,
            quality="standard",
            variations=o.images_total,
            width=o.preset.default_width,
            height=o.preset.default_height,
            seed=1000,
        )
    )


# --- finished images (finishing's fields filled as the worker would, without running it)


def leased(job: GenerationJob) -> Lease:
    """The job running under a worker's lease, as lifecycle.job_claim leaves it: what the worker's
    writers (store_images, save_previews...) need to write for it."""
    job.status, job.lease = JobStatus.PROCESSING, uuid.uuid4()
    GenerationJob.objects.filter(pk=job.pk).update(status=job.status, lease=job.lease)
    return Lease.of(job)


def png_bytes(colour: str = "blue", size: tuple[int, int] = (64, 64), mode: str = "RGB") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, format="PNG")
    return buffer.getvalue()


def webp_bytes(colour: tuple[int, int, int, int] = (15, 108, 189, 128), size: tuple[int, int] = (64, 64)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGBA", size, colour).save(buffer, format="WEBP", lossless=True)
    return buffer.getvalue()


SVG_TEXT = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><path d="M0 0h64v64H0z" fill="#0f6cbd"/></svg>'
)
FINISHING_RECORDS = [
    {"stage": "size", "seconds": 0.01, "settings": {"upscaler": "Lanczos", "size": [64, 64]}},
    {"stage": "palette", "seconds": 0.02, "settings": {"tolerance": 10.0}},
    {"stage": "svg", "seconds": 0.05, "settings": {"colours": 2}},
]


class GeneratedImageFactory(factory.django.DjangoModelFactory):
    """A stored image of a finished job; traits fill what finishing writes."""

    class Meta:
        model = "generation.GeneratedImage"

    class Params:
        # An Icon-like image: palette-scored, keyed out, traced to SVG, WebP stored.
        traced = factory.Trait(
            svg=factory.django.FileField(filename="traced.svg", data=SVG_TEXT.encode()),
            webp=factory.django.FileField(filename="full.webp", data=webp_bytes()),
            has_alpha=True,
            compliance_before=0.81,
            compliance_after=0.99,
            finishing=FINISHING_RECORDS,
        )

    job = factory.SubFactory("tests.factories.GenerationJobFactory", status="complete")
    index = 0  # give each further image of a job its own
    seed = factory.LazyAttribute(lambda o: 1000 + o.index)
    file = factory.django.FileField(filename="image.png", data=png_bytes())
    width = 64
    height = 64


def icon_plan(**fields: object) -> dict:
    """An Icon-like finishing plan as a job's params carry it: palette, floor 0.9, keyed out, traced."""
    from generation.finishing.plan import Palette, Plan

    values: dict = {
        "output_size": (64, 64),
        "palette": Palette(("#0f6cbd", "#107c10"), "#ffffff", 10.0),
        "correct": True,
        "transparent": True,
        "svg": True,
        "floor": 0.9,
    }
    return Plan(**(values | fields)).to_params()  # type: ignore[arg-type]


class FinishedJobFactory(GenerationJobFactory):
    """A complete job whose params carry a finishing plan (`plan`: icon_plan() unless given)."""

    class Params:
        plan = factory.LazyFunction(icon_plan)

    status = "complete"
    params = factory.LazyAttribute(
        lambda o: (
            recipe.resolve_params(
                preset=o.preset,
                model=ImageModel.objects.get(key="tiny-flux"),
                prompt=o.prompt,
                quality="standard",
                variations=o.images_total,
                width=o.preset.default_width,
                height=o.preset.default_height,
                seed=1000,
            )
            | {"finishing": o.plan}
        )
    )


class SubmissionFactory(factory.django.DjangoModelFactory):
    """An image submitted for review by its owner (generation/review/), waiting unless told otherwise."""

    class Meta:
        model = "generation.Submission"

    image = factory.SubFactory(GeneratedImageFactory)
    submitted_by = factory.LazyAttribute(lambda o: o.image.job.owner)
    note = "For the onboarding screens"
