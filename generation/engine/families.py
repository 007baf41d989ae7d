"""What the web side may know about model families without importing torch.

`pipelines` lists the diffusers pipeline classes (`_class_name` in model_index.json) that a
family's adapter loads, so an admin's new model entry is checked before any worker sees it.
"""

FAMILIES: dict[str, dict[str, object]] = {
    "flux": {"label": "FLUX.1", "pipelines": ["FluxPipeline"]},
    "sd3": {"label": "Stable Diffusion 3.5", "pipelines": ["StableDiffusion3Pipeline"]},
    "sdxl": {"label": "SDXL", "pipelines": ["StableDiffusionXLPipeline"]},
    "hidream": {"label": "HiDream-I1", "pipelines": ["HiDreamImagePipeline"]},
    "flux2": {"label": "FLUX.2 [klein]", "pipelines": ["Flux2KleinPipeline"]},
    "zimage": {"label": "Z-Image", "pipelines": ["ZImagePipeline"]},
    "qwenimage": {"label": "Qwen-Image", "pipelines": ["QwenImagePipeline"]},
}


def family_choices() -> list[tuple[str, str]]:
    return [(key, str(info["label"])) for key, info in FAMILIES.items()]


def accepts_pipeline(family: str, class_name: str) -> bool:
    pipelines = FAMILIES.get(family, {}).get("pipelines", [])
    return isinstance(pipelines, list) and class_name in pipelines
