"""The four asset types of the product brief. Admins edit them afterwards.

LoRA references are left empty: the brand LoRAs are trained by the studio later and
attached in the admin (the brief's paths, e.g. flux/icons-fluent2-v1.safetensors, are
listed in each description for reference).
"""

from django.db import migrations

PRESETS = [
    {
        "slug": "icon",
        "name": "Icon",
        "position": 1,
        "description": "Fluent 2 UI icons and app icons. LoRA: flux/icons-fluent2-v1.safetensors",
        "prompt_template": "{subject}, Fluent 2 design icon, minimal vector style, solid background, "
        "clean geometric shapes, professional UI icon, Microsoft design language, subtle gradients, "
        "centered composition, high contrast",
        "negative_prompt": "photorealistic, 3d render, complex, cluttered, text, watermark",
        "default_width": 512,
        "default_height": 512,
        "allowed_sizes": [[256, 256], [512, 512], [1024, 1024]],
        "steps": 28,
        "guidance_scale": 3.5,
        "lora_strength": 0.85,
        "use_refiner": False,
        "use_upscaler": True,
    },
    {
        "slug": "product-illustration",
        "name": "Product Illustration",
        "position": 2,
        "description": "Product pages and documentation. LoRA: flux/product-illustrations-v1.safetensors",
        "prompt_template": "{subject}, product illustration style, clean professional aesthetic, brand color "
        "palette, balanced composition, clear focal point, suitable for documentation and product pages",
        "negative_prompt": "cluttered, amateur, low quality, watermark",
        "default_width": 1024,
        "default_height": 1024,
        "allowed_sizes": [[1024, 1024], [2048, 2048]],
        "steps": 35,
        "guidance_scale": 4.0,
        "lora_strength": 0.8,
        "use_refiner": True,
        "use_upscaler": True,
    },
    {
        "slug": "logo-illustration",
        "name": "Logo Illustration",
        "position": 3,
        "description": "App tiles and feature callouts. LoRA: flux/logo-illustrations-v1.safetensors",
        "prompt_template": "{subject}, simple iconic illustration, logo-style artwork, clean and memorable, "
        "limited color palette, strong silhouette, works at small sizes, brand aesthetic",
        "negative_prompt": "complex, detailed, photorealistic, busy, cluttered",
        "default_width": 512,
        "default_height": 512,
        "allowed_sizes": [[512, 512], [1024, 1024]],
        "steps": 30,
        "guidance_scale": 3.5,
        "lora_strength": 0.85,
        "use_refiner": False,
        "use_upscaler": True,
    },
    {
        "slug": "premium-illustration",
        "name": "Premium Illustration",
        "position": 4,
        "description": "Websites, banners and campaigns. LoRA: flux/premium-illustrations-v1.safetensors",
        "prompt_template": "{subject}, premium editorial illustration, marketing-grade quality, rich visual "
        "storytelling, sophisticated color palette, dynamic composition, hero image quality, brand aesthetic, "
        "suitable for websites and marketing campaigns",
        "negative_prompt": "amateur, stock photo, generic, low effort, clipart",
        "default_width": 1024,
        "default_height": 1024,
        "allowed_sizes": [[1024, 1024], [2048, 2048], [4096, 4096]],
        "steps": 45,
        "guidance_scale": 4.5,
        "lora_strength": 0.75,
        "use_refiner": True,
        "use_upscaler": True,
    },
]


def seed(apps, schema_editor):
    AssetPreset = apps.get_model("generation", "AssetPreset")
    for preset in PRESETS:
        AssetPreset.objects.update_or_create(slug=preset["slug"], defaults=preset)


def unseed(apps, schema_editor):
    apps.get_model("generation", "AssetPreset").objects.filter(slug__in=[p["slug"] for p in PRESETS]).delete()


class Migration(migrations.Migration):
    dependencies = [("generation", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
