"""What the web side may know about model families without importing torch.

`img2img` says whether the adapter has an img2img twin ("More like this" from an image, sketches);
`inpaint` whether it has an inpaint twin (repainting a mask; the tiny SD3 cannot prove one: its
transformer has 4 latent channels where the inpaint pipeline needs 16, so SD3 is not offered).
`references` whether its own pipeline takes style references (else an IP-Adapter add-on may).
`size_multiple` is the grid sides must be on (16 unless said: SDXL's UNet does not patch its latents).
`negative_prompt` says when the adapter's call makes the asset type's negative prompt act:
"guidance" (classifier-free guidance above 1), "true_cfg" (FLUX.1: only where the entry's
`true_cfg_scale` option asks for two passes a step, and not on a masked repaint) or never.
`pipelines` lists the diffusers pipeline classes (`_class_name` in model_index.json) that a
family's adapter loads, so an admin's new model entry is checked before any worker sees it.
"""

FAMILIES: dict[str, dict[str, object]] = {
    "flux": {
        "label": "FLUX.1",
        "img2img": True,
        "inpaint": True,
        "ip_adapter": True,  # XLabs' FLUX IP-Adapter
        "controlnet": "FluxControlNetModel",
        "negative_prompt": "true_cfg",
        "pipelines": ["FluxPipeline"],
    },
    "fluxkontext": {
        "label": "FLUX.1 Kontext",
        "inpaint": True,
        "edit": True,  # FLUX.1's transformer trained to change the image it is given by an instruction
        "negative_prompt": "true_cfg",
        "pipelines": ["FluxKontextPipeline"],
    },
    "sd3": {
        "label": "Stable Diffusion 3.5",
        "img2img": True,
        "negative_prompt": "guidance",
        "pipelines": ["StableDiffusion3Pipeline"],
    },
    "sdxl": {
        "label": "SDXL",
        "img2img": True,
        "inpaint": True,
        "ip_adapter": True,
        "controlnet": "ControlNetModel",
        "negative_prompt": "guidance",
        "pipelines": ["StableDiffusionXLPipeline"],
        "size_multiple": 8,
    },
    "hidream": {
        "label": "HiDream-I1",
        "img2img": False,
        "negative_prompt": "guidance",
        "pipelines": ["HiDreamImagePipeline"],
    },
    "flux2": {
        "label": "FLUX.2 [klein]",
        "img2img": False,
        "inpaint": True,
        "edit": True,  # the image as a reference of the base pipeline: "make the background blue"
        "references": True,  # style references through the same input: several images, no add-on
        "pipelines": ["Flux2KleinPipeline"],
    },
    "zimage": {
        "label": "Z-Image",
        "img2img": True,
        "inpaint": True,
        "controlnet": "ZImageControlNetModel",
        "negative_prompt": "guidance",
        "pipelines": ["ZImagePipeline"],
    },
    "qwenimage": {
        "label": "Qwen-Image",
        "img2img": True,
        "inpaint": True,
        "controlnet": "QwenImageControlNetModel",
        "negative_prompt": "guidance",  # true CFG at the job's guidance
        "pipelines": ["QwenImagePipeline"],
    },
    "flux2dev": {
        "label": "FLUX.2 [dev]",
        "img2img": False,
        "edit": True,  # as klein: the image as a reference of the base pipeline
        "references": True,
        "pipelines": ["Flux2Pipeline"],
    },
    "chroma": {
        "label": "Chroma1",
        "img2img": True,
        "inpaint": True,
        "negative_prompt": "guidance",  # real CFG: the asset type's negative prompt acts above guidance 1
        "pipelines": ["ChromaPipeline"],
    },
    "qwenimageedit": {
        "label": "Qwen-Image-Edit",
        "edit": True,  # the image it changes, read by its vision-language encoder with the instruction
        "references": True,  # and up to three pictures in all: style references after the image
        "negative_prompt": "guidance",
        "pipelines": ["QwenImageEditPlusPipeline"],
    },
}


def family_choices() -> list[tuple[str, str]]:
    return [(key, str(info["label"])) for key, info in FAMILIES.items()]


def has_img2img(family: str) -> bool:
    return bool(FAMILIES.get(family, {}).get("img2img"))


def has_ip_adapter(family: str) -> bool:
    """Style references through an IP-Adapter add-on (diffusers' load_ip_adapter on a UNet)."""
    return bool(FAMILIES.get(family, {}).get("ip_adapter"))


def has_native_references(family: str) -> bool:
    """Style references through the base pipeline's own image input (FLUX.2 klein): no add-on,
    and no strength to set (the pipeline follows its references as given)."""
    return bool(FAMILIES.get(family, {}).get("references"))


def controlnet_class(family: str) -> str:
    """The diffusers class of the family's ControlNets ("" where the adapter takes none)."""
    value = FAMILIES.get(family, {}).get("controlnet")
    return value if isinstance(value, str) else ""


def has_edit(family: str) -> bool:
    """Instruction edits: the family's pipeline takes the image to change with the instruction."""
    return bool(FAMILIES.get(family, {}).get("edit"))


def uses_negative_prompt(family: str, options: dict | None, guidance: float, *, masked: bool = False) -> bool:
    """Whether a job's negative prompt acts on this family's pipeline (else the job records none).
    The adapters' call_kwargs decide; tests/engine/test_engines.py checks that the two agree."""
    rule = FAMILIES.get(family, {}).get("negative_prompt")
    if rule == "guidance":
        return guidance > 1
    if rule == "true_cfg":
        return float((options or {}).get("true_cfg_scale", 1.0)) > 1.0 and not masked
    return False


def has_inpaint(family: str) -> bool:
    return bool(FAMILIES.get(family, {}).get("inpaint"))


def accepts_pipeline(family: str, class_name: str) -> bool:
    pipelines = FAMILIES.get(family, {}).get("pipelines", [])
    return isinstance(pipelines, list) and class_name in pipelines


def size_multiple(family: str) -> int:
    value = FAMILIES.get(family, {}).get("size_multiple", 16)
    return value if isinstance(value, int) else 16
