"""Registry entries for the SD3.5, SDXL and HiDream-I1 families (disabled until pulled)."""

from django.db import migrations

SD35_NOTICE = (
    "Stability AI Community License: free for organisations with under $1M annual revenue; above that, "
    "outputs may be used in products only with a Stability AI Enterprise license."
)
HIDREAM_NOTICE = (
    "HiDream-I1 weights are MIT-licensed; its Llama-3.1-8B-Instruct text encoder is under the Llama 3.1 "
    "Community License (attribution, acceptable-use policy). Outputs may be used in products."
)
HIDREAM_OPTIONS = {"llama": "meta-llama/Llama-3.1-8B-Instruct"}

MODELS = [
    {
        "key": "sd35-large",
        "name": "Stable Diffusion 3.5 Large",
        "family": "sd3",
        "repo_id": "stabilityai/stable-diffusion-3.5-large",
        "license_name": "Stability AI Community License",
        "commercial_use": False,
        "license_notice": SD35_NOTICE,
        "license_url": "https://stability.ai/community-license-agreement",
        "default_steps": 28,
        "default_guidance": 4.0,
        "supports_negative_prompt": True,
        "supports_img2img": True,
        "position": 20,
    },
    {
        "key": "sd35-medium",
        "name": "Stable Diffusion 3.5 Medium",
        "family": "sd3",
        "repo_id": "stabilityai/stable-diffusion-3.5-medium",
        "license_name": "Stability AI Community License",
        "commercial_use": False,
        "license_notice": SD35_NOTICE,
        "license_url": "https://stability.ai/community-license-agreement",
        "default_steps": 40,
        "default_guidance": 4.5,
        "supports_negative_prompt": True,
        "supports_img2img": True,
        "position": 21,
    },
    {
        "key": "sdxl-base",
        "name": "SDXL 1.0",
        "family": "sdxl",
        "repo_id": "stabilityai/stable-diffusion-xl-base-1.0",
        "license_name": "CreativeML Open RAIL++-M",
        "commercial_use": True,
        "license_notice": "Open RAIL++-M: outputs may be used in products (use restrictions apply).",
        "license_url": "https://huggingface.co/stabilityai/stable-diffusion-xl-base-1.0/blob/main/LICENSE.md",
        "default_guidance": 7.0,
        "max_side": 1536,
        "supports_negative_prompt": True,
        "supports_img2img": True,
        "position": 30,
    },
    {
        "key": "hidream-i1-full",
        "name": "HiDream-I1 Full",
        "family": "hidream",
        "repo_id": "HiDream-ai/HiDream-I1-Full",
        "license_name": "MIT + Llama 3.1 Community License",
        "commercial_use": True,
        "license_notice": HIDREAM_NOTICE,
        "license_url": "https://huggingface.co/HiDream-ai/HiDream-I1-Full",
        "default_steps": 50,
        "default_guidance": 5.0,
        "supports_negative_prompt": True,
        "options": HIDREAM_OPTIONS,
        "position": 40,
    },
    {
        "key": "hidream-i1-dev",
        "name": "HiDream-I1 Dev",
        "family": "hidream",
        "repo_id": "HiDream-ai/HiDream-I1-Dev",
        "license_name": "MIT + Llama 3.1 Community License",
        "commercial_use": True,
        "license_notice": HIDREAM_NOTICE,
        "license_url": "https://huggingface.co/HiDream-ai/HiDream-I1-Dev",
        "default_steps": 28,
        "default_guidance": 0.0,
        "options": HIDREAM_OPTIONS,
        "position": 41,
    },
    {
        "key": "hidream-i1-fast",
        "name": "HiDream-I1 Fast",
        "family": "hidream",
        "repo_id": "HiDream-ai/HiDream-I1-Fast",
        "license_name": "MIT + Llama 3.1 Community License",
        "commercial_use": True,
        "license_notice": HIDREAM_NOTICE,
        "license_url": "https://huggingface.co/HiDream-ai/HiDream-I1-Fast",
        "default_steps": 16,
        "default_guidance": 0.0,
        "options": HIDREAM_OPTIONS,
        "position": 42,
    },
]


def seed(apps, schema_editor):
    ImageModel = apps.get_model("generation", "ImageModel")
    for entry in MODELS:
        ImageModel.objects.update_or_create(key=entry["key"], defaults={"enabled": False, **entry})
    # FLUX.1 has an img2img twin on the same weights (FluxImg2ImgPipeline).
    ImageModel.objects.filter(key__in=["flux-schnell", "flux-dev"]).update(supports_img2img=True)


def unseed(apps, schema_editor):
    apps.get_model("generation", "ImageModel").objects.filter(key__in=[m["key"] for m in MODELS]).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0005_model_options")]
    operations = [migrations.RunPython(seed, unseed)]
