"""Live previews: what each image of a running batch is becoming, drawn from the step's latents.

A linear map from latent channels to RGB (ComfyUI's and InvokeAI's "latent2rgb"), fitted once per
engine against the engine's own VAE: a few synthetic images (coloured blocks on gradients) go
through the VAE's encoder, and least squares finds the map from those latents back to the images'
colours at latent resolution. Fitting on encoded images, not on decoded noise, keeps the map true
to the latents a nearly finished image has. Drawing is one small matrix product on the device and
a resize: far cheaper than a VAE decode, so previews can come every second.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
import torch.nn.functional as F
from PIL import Image

log = logging.getLogger(__name__)

# Long side of a preview: enough to see shapes and colours in a grid tile, a few KB as WebP.
PREVIEW_SIDE = 128
FIT_IMAGES, FIT_SIDE = 8, 64

# images in [-1, 1], (batch, 3, H, W) -> the VAE's latents for them, (batch, channels, H/f, W/f)
Encoder = Callable[[torch.Tensor], torch.Tensor]


class LatentPreviewer:
    """latents (VAE space) -> small RGB images, by `rgb = latents · weight + bias` per pixel."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.weight, self.bias = weight, bias  # (channels, 3), (3,)

    @classmethod
    def fit(cls, encode: Encoder, *, device: torch.device, dtype: torch.dtype) -> LatentPreviewer:
        images = synthetic_images(FIT_IMAGES, FIT_SIDE)
        with torch.inference_mode():
            latents = encode(images.to(device=device, dtype=dtype)).float().cpu()
        factor = FIT_SIDE // latents.shape[-1]
        colours = F.avg_pool2d(images, factor)  # each latent pixel's patch of the image
        x = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
        x = torch.cat([x, torch.ones(len(x), 1)], dim=1)
        y = colours.permute(0, 2, 3, 1).reshape(-1, 3)
        solution = torch.linalg.lstsq(x, y).solution
        return cls(solution[:-1], solution[-1])

    def draw(self, latents: torch.Tensor, size: tuple[int, int]) -> list[Image.Image]:
        """One image per latent of the batch, `size` (width, height) scaled into PREVIEW_SIDE."""
        weight = self.weight.to(latents.device, torch.float32)
        bias = self.bias.to(latents.device, torch.float32)
        with torch.inference_mode():
            rgb = torch.einsum("bchw,cd->bhwd", latents.float(), weight) + bias
            pixels = ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()
        target = preview_size(*size)
        return [Image.fromarray(p).resize(target, Image.Resampling.BILINEAR) for p in pixels]


def preview_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, PREVIEW_SIDE / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def synthetic_images(count: int, side: int, seed: int = 0) -> torch.Tensor:
    """Flat coloured blocks on smooth gradients, like brand artwork: (count, 3, side, side) in [-1, 1]."""
    gen = torch.Generator("cpu").manual_seed(seed)
    ramp = torch.linspace(0, 1, side)
    images = []
    for _ in range(count):
        start, end = torch.rand(3, 1, 1, generator=gen), torch.rand(3, 1, 1, generator=gen)
        image = (start + (end - start) * ramp.view(1, 1, side)).expand(3, side, side).clone()  # a gradient
        for _ in range(6):
            x0, y0 = (int(v) for v in torch.randint(0, side * 3 // 4, (2,), generator=gen))
            w, h = (int(v) for v in torch.randint(side // 8, side // 2, (2,), generator=gen))
            image[:, y0 : y0 + h, x0 : x0 + w] = torch.rand(3, 1, 1, generator=gen)
        images.append(image)
    return torch.stack(images) * 2 - 1


def vae_encoder(vae: object) -> Encoder:
    """The usual diffusers VAE: `encode(x).latent_dist`, whose mode is the image's latent."""

    def encode(images: torch.Tensor) -> torch.Tensor:
        return vae.encode(images).latent_dist.mode()  # type: ignore[attr-defined]

    return encode


def fit_or_none(encode: Encoder, *, device: torch.device, dtype: torch.dtype, family: str) -> LatentPreviewer | None:
    """A previewer, or None (no previews) when this VAE cannot be fitted: previews never fail a job."""
    try:
        return LatentPreviewer.fit(encode, device=device, dtype=dtype)
    except Exception:
        log.warning("No live previews for this %s model: fitting its latent colours failed", family, exc_info=True)
        return None
