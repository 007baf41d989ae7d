"""Latent previews: what each image of a running batch is becoming, drawn from the step's latents
(the worker stores them as a job's live previews: worker/progress.py).

A linear map from latent channels to RGB (ComfyUI's and InvokeAI's "latent2rgb"), fitted once per
engine against the engine's own VAE: a few random latents, distributed as the pipeline's own
(unit Gaussian before the pipeline's scaling), go through the VAE's decoder, and least squares
finds the map from each latent pixel to the colour of the patch the decoder paints for it.
Drawing is then one small matrix product on the device and a resize: far cheaper than a VAE
decode, so previews can come every second.
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
# Random latents decoded for the fit: 4 of 16x16 give 1024 samples for at most ~33 unknowns.
FIT_LATENTS, FIT_LATENT_SIDE = 4, 16

# latents in the VAE's space, (batch, channels, h, w) -> images in [-1, 1], (batch, 3, H, W)
Decoder = Callable[[torch.Tensor], torch.Tensor]


class LatentPreviewer:
    """latents (VAE space) -> small RGB images, by `rgb = latents · weight + bias` per pixel."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.weight, self.bias = weight, bias  # (channels, 3), (3,)

    @classmethod
    def fit(cls, latents: torch.Tensor, decode: Decoder) -> LatentPreviewer:
        """Least squares from `latents` (VAE space) to the colours `decode` paints for them."""
        with torch.inference_mode():
            images = decode(latents).float().clamp(-1, 1).cpu()
        latents = latents.float().cpu()
        if not torch.isfinite(images).all():
            raise ValueError("the VAE decoded the fitting latents to NaN or infinity")
        colours = F.avg_pool2d(images, images.shape[-1] // latents.shape[-1])  # each latent pixel's patch
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


def vae_decoder(vae: object) -> Decoder:
    """The usual diffusers VAE: `decode(latents).sample`."""

    def decode(latents: torch.Tensor) -> torch.Tensor:
        return vae.decode(latents).sample  # type: ignore[attr-defined]

    return decode


def fit_or_none(make: Callable[[], LatentPreviewer], *, family: str) -> LatentPreviewer | None:
    """A previewer, or None (no previews) when this VAE cannot be fitted: previews never fail a job."""
    try:
        return make()
    except Exception:
        log.warning("No live previews for this %s model: fitting its latent colours failed", family, exc_info=True)
        return None
