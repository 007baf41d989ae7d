"""Upscaler files for tests, built on the spot: architecture-true models with random weights
(spandrel's own classes, so the real loader detects them), and files it must refuse."""

from __future__ import annotations

import pickle
from pathlib import Path


def _esrgan_state(scale: int, filters: int, blocks: int, unshuffle: int) -> dict:
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    # Real-ESRGAN's 2x models unshuffle the input by 2 and upscale the result 4x (in_nc 12).
    model = ESRGAN(
        in_nc=3 * unshuffle**2,
        out_nc=3,
        num_filters=filters,
        num_blocks=blocks,
        scale=scale * unshuffle,
        shuffle_factor=unshuffle if unshuffle > 1 else None,
    )
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def build_tiny_esrgan(path: Path, *, scale: int = 4, filters: int = 8, blocks: int = 1, unshuffle: int = 1) -> Path:
    """An RRDBNet (ESRGAN / Real-ESRGAN layout) with random weights, as .safetensors, or as a
    .pth state dict when `path` ends so; `unshuffle=2` with `scale=2` is Real-ESRGAN x2plus's layout."""
    import torch
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    state = _esrgan_state(scale, filters, blocks, unshuffle)
    if path.suffix == ".pth":
        torch.save(state, path)
    else:
        save_file(state, path)
    return path


def build_restoration_model(path: Path) -> Path:
    """A 1x DnCNN (denoiser): a model spandrel loads that does not enlarge anything."""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.DnCNN import DnCNN

    torch.manual_seed(0)
    model = DnCNN(in_nc=3, out_nc=3, nc=8, nb=5)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, path)
    return path


def build_text_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("These are release notes, not weights.\n")
    return path


def build_truncated(path: Path) -> Path:
    """A tiny ESRGAN cut off halfway through its tensors, as an interrupted copy leaves it."""
    build_tiny_esrgan(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        # Unpickling this would create the marker file: proof that code ran.
        return (Path.touch, (self.marker,))


def build_malicious_pth(path: Path, marker: Path) -> Path:
    """A .pth whose pickle calls a function when loaded (creates `marker`): must never run."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"model.0.weight": torch.zeros(1), "payload": _RunsCode(marker)}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL
    )
    return path
