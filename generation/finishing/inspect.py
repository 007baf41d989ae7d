"""What an upscaler file is: read with spandrel, the loader behind chaiNNer and ComfyUI.

`read_upscaler` imports torch and spandrel, so the web process never calls it directly: it calls
`inspect_in_subprocess`, which runs this module as a child process (`python -m
generation.finishing.inspect PATH`, one JSON line on stdout) and needs no Django settings there.

Loading is safe for untrusted files: spandrel reads .safetensors with `safetensors.torch.load_file`
(tensors only, no code), and .pth / .ckpt with `torch.load(pickle_module=RestrictedUnpickle)`, an
unpickler whose `find_class` allows only OrderedDict, `torch._utils._rebuild_tensor_v2` and the
storage types, so a pickle that calls anything else (os.system...) is refused before it runs
(spandrel/__helpers/loader.py and unpickler.py, spandrel 0.4.2). Other extensions (.pt is
TorchScript, which spandrel would load with torch.jit) are refused here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EXTENSIONS = (".pth", ".safetensors")
ROOT = Path(__file__).resolve().parents[2]  # the project, so the child finds the `generation` package


def read_upscaler(path: Path) -> dict[str, Any]:
    """{"scale", "architecture", "half", "input_channels", "output_channels"} of a super-resolution
    model file; ValueError with a message for an admin (the file's name, never its folder)."""
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in EXTENSIONS:
        raise ValueError(f"{name} is not an upscaler spandrel can load: use a .pth or .safetensors file.")
    try:
        descriptor = _load(path)
    except Exception as exc:
        raise ValueError(f"{name} is not an upscaler spandrel can load: {read_failure(exc)}") from None
    from spandrel import ImageModelDescriptor

    architecture = descriptor.architecture.name
    if not isinstance(descriptor, ImageModelDescriptor):
        raise ValueError(f"{name} is an inpainting model ({architecture}), not an upscaler.")
    if descriptor.purpose != "SR" or descriptor.scale < 2:
        kind = "face restoration" if descriptor.purpose == "FaceSR" else "restoration"
        raise ValueError(
            f"{name} is a {descriptor.scale}x {kind} model ({architecture}): it cleans images up "
            "without making them larger. Give a super-resolution model (2x, 4x...)."
        )
    return {
        "scale": int(descriptor.scale),
        "architecture": architecture,
        "half": bool(descriptor.supports_half),
        "input_channels": int(descriptor.input_channels),
        "output_channels": int(descriptor.output_channels),
    }


def _load(path: Path) -> Any:
    import spandrel

    return spandrel.ModelLoader().load_from_file(path)


def read_failure(exc: Exception) -> str:
    """The library's message, cut to its first line, without server paths."""
    from generation.engine.types import without_paths

    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    detail = without_paths(first)[:300]
    return f"{exc.__class__.__name__}: {detail}" if detail else exc.__class__.__name__


def inspect_in_subprocess(path: Path, timeout: float = 120) -> dict[str, Any]:
    """`read_upscaler` in a child Python, so the caller never imports torch; ValueError when the
    file is refused, the child crashes or it runs past `timeout` seconds."""
    name = Path(path).name
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "generation.finishing.inspect", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise ValueError(f"{name} could not be read: checking it took more than {timeout:.0f} s.") from None
    answer = _last_json_line(done.stdout)
    if answer is None:
        raise ValueError(f"{name} could not be read: the checker stopped (exit code {done.returncode}).")
    if "error" in answer:
        raise ValueError(str(answer["error"]))
    return dict(answer)


def _last_json_line(text: str) -> dict[str, Any] | None:
    # Libraries may print above it; the answer is the last line.
    for line in reversed(text.splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(json.dumps({"error": "usage: python -m generation.finishing.inspect PATH"}))
        return 2
    try:
        info = read_upscaler(Path(argv[0]))
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}))
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
