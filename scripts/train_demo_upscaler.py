"""Train the offline demo upscaler: a small Real-ESRGAN Compact 4x for the demo brand's icons.

    .venv/bin/python scripts/train_demo_upscaler.py [--seconds 200] [--out upscalers/demo-icons-4x.safetensors]

The demo model draws at 64 px and Icons are asked at 1024, so the studio needs a 4x model that
runs offline. This one learns, on CPU in a few minutes, to turn the kit's icons shrunk to 64 px
(bicubic) back into the 256 px drawings (the kit's own jitter of size and position): the last layer
by least squares over pass-through layers, then all of them by Adam on an L1 loss (random crops,
flips and turns), keeping the state that scores best on validation icons. It ends by scoring
held-out icons against Lanczos, which it must beat to be saved. Deterministic: the same file each run.

The weights are the team's own (trained here on procedural icons): commercial use allowed.
"""

from __future__ import annotations

import argparse
import copy
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generation.devtools.demo_kit import PALETTE, SHAPES, draw_icon  # noqa: E402

SCALE, HIGH = 4, 256
LOW = HIGH // SCALE
FEATURES, CONVS = 32, 8  # ~80k parameters: a 0.3 MB file, fast enough for 1024 px icons on CPU
CROP = 32  # low-resolution crop side
LR = 3e-5  # small: the start is already good (fit_last), and a larger step undoes it


def icon_pair(colour: str, shape: str, rng: random.Random) -> tuple[Image.Image, Image.Image]:
    """(64 px input, 256 px target): the target drawn by the kit, the input shrunk from it."""
    high = draw_icon(colour, shape, size=HIGH, rng=rng)
    return high.resize((LOW, LOW), Image.Resampling.BICUBIC), high


def pairs(per_pair: int, seed: int) -> list[tuple[Image.Image, Image.Image]]:
    rng = random.Random(seed)
    return [icon_pair(c, s, rng) for _ in range(per_pair) for s in SHAPES for c in PALETTE]


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    arrays = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) / 255 for image in images])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255**2 / max(mse, 1e-10))


def batch(low: torch.Tensor, high: torch.Tensor, size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random crops, same place in both; random flips and quarter turns."""
    picks = torch.randint(0, low.shape[0], (size,), generator=gen)
    xs, ys = torch.randint(0, LOW - CROP + 1, (2, size), generator=gen)
    lows, highs = [], []
    for i, x, y in zip(picks.tolist(), xs.tolist(), ys.tolist(), strict=True):
        lo = low[i, :, y : y + CROP, x : x + CROP]
        hi = high[i, :, y * SCALE : (y + CROP) * SCALE, x * SCALE : (x + CROP) * SCALE]
        turns = int(torch.randint(0, 4, (1,), generator=gen))
        lo, hi = torch.rot90(lo, turns, (1, 2)), torch.rot90(hi, turns, (1, 2))
        if torch.rand(1, generator=gen) < 0.5:
            lo, hi = lo.flip(2), hi.flip(2)
        lows.append(lo)
        highs.append(hi)
    return torch.stack(lows), torch.stack(highs)


def build() -> torch.nn.Module:
    """The network set to start where plain upsampling is: every conv but the last passes its
    input through (a Dirac kernel, plus a little noise for the other channels to learn from), so
    the last conv sees the 64 px image itself and can be solved for (`fit_last`). From a random
    start, ten narrow layers learn too slowly for a few CPU minutes."""
    from spandrel.architectures.Compact import Compact

    model = Compact(num_in_ch=3, num_out_ch=3, num_feat=FEATURES, num_conv=CONVS, upscale=SCALE)
    convs = [m for m in model.body if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv in convs[:-1]:
            torch.nn.init.dirac_(conv.weight)
            conv.weight.add_(torch.randn_like(conv.weight) * 0.02)
            torch.nn.init.zeros_(conv.bias)
    return model


def fit_last(model: torch.nn.Module, low: torch.Tensor, high: torch.Tensor, rows: int = 60_000) -> None:
    """The last conv by least squares (ridge): the best it can do on the features before it, for
    the residual over nearest-neighbour upsampling that the network adds to."""
    body, last = model.body[:-1], model.body[-1]
    with torch.no_grad():
        features = low
        for layer in body:
            features = layer(features)
        patches = F.unfold(features, 3, padding=1).permute(0, 2, 1).reshape(-1, FEATURES * 9)
        residual = high - F.interpolate(low, scale_factor=SCALE, mode="nearest")
        targets = F.pixel_unshuffle(residual, SCALE).permute(0, 2, 3, 1).reshape(-1, 3 * SCALE * SCALE)
        pick = torch.randperm(patches.shape[0], generator=torch.Generator().manual_seed(0))[:rows]
        x = torch.cat([patches[pick], torch.ones(len(pick), 1)], dim=1).double()
        y = targets[pick].double()
        solution = torch.linalg.solve(x.T @ x + 1e-3 * torch.eye(x.shape[1], dtype=x.dtype), x.T @ y)
        last.weight.copy_(solution[:-1].T.reshape(last.weight.shape).float())
        last.bias.copy_(solution[-1].float())


def train(seconds: float, *, steps: int = 20_000, batch_size: int = 16, seed: int = 0) -> torch.nn.Module:
    """Least squares for the last layer, then Adam on every layer for `seconds`, keeping the state
    that scores best on validation icons (a fine-tune that drifts never ships)."""
    torch.manual_seed(seed)
    data = pairs(per_pair=10, seed=seed)
    low, high = to_tensor([p[0] for p in data]), to_tensor([p[1] for p in data])
    model = build()
    fit_last(model, low, high)
    best_score, best_state = validate(model), copy.deepcopy(model.state_dict())
    print(f"least-squares start: {best_score:.2f} dB PSNR on validation icons", flush=True)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(seed)
    start, step = time.monotonic(), 0
    while step < steps and (elapsed := time.monotonic() - start) < seconds:
        # Cosine decay over the time budget: the run ends on a low learning rate however fast the machine.
        for group in optimizer.param_groups:
            group["lr"] = LR * 0.5 * (1 + math.cos(math.pi * min(1.0, elapsed / seconds)))
        lo, hi = batch(low, high, batch_size, gen)
        loss = F.l1_loss(model(lo), hi)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % 100 == 0:
            score = validate(model)
            print(f"step {step:5d}  {elapsed:6.1f} s  L1 {loss.item():.4f}  validation {score:.2f} dB", flush=True)
            if score > best_score:
                best_score, best_state = score, copy.deepcopy(model.state_dict())
    print(f"trained {step} steps in {time.monotonic() - start:.0f} s; best validation {best_score:.2f} dB")
    model.load_state_dict(best_state)
    return model.eval()


def validate(model: torch.nn.Module) -> float:
    model.eval()
    score = evaluate(model, per_pair=1, seed=99)[0]
    model.train()
    return score


def evaluate(model: torch.nn.Module, per_pair: int = 2, seed: int = 1234) -> tuple[float, float]:
    """Mean PSNR (dB) on held-out icons (another seed): the model's, and Lanczos's."""
    ours, lanczos = [], []
    for low, high in pairs(per_pair, seed):
        with torch.inference_mode():
            out = model(to_tensor([low])).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        target = np.asarray(high)
        ours.append(psnr(np.round(out * 255), target))
        lanczos.append(psnr(np.asarray(low.resize((HIGH, HIGH), Image.Resampling.LANCZOS)), target))
    return float(np.mean(ours)), float(np.mean(lanczos))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "upscalers" / "demo-icons-4x.safetensors")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = train(args.seconds)
    ours, lanczos = evaluate(model)
    print(f"held-out icons, 64 -> 256 px: model {ours:.2f} dB PSNR, Lanczos {lanczos:.2f} dB PSNR")
    if ours <= lanczos:
        sys.exit("The model does not beat Lanczos; not saved.")
    from safetensors.torch import save_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, args.out, metadata={"license": "Brand Studio (trained on procedural icons)"})
    print(f"saved {args.out} ({args.out.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
