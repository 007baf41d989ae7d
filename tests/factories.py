import factory
from django.contrib.auth import get_user_model

from generation import services
from generation.models import AssetPreset, GenerationJob, ImageModel

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)


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
        lambda o: services.resolve_params(
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
