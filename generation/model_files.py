"""Where a registry entry's weights are on this machine. No torch here: the web process,
the management commands and the workers all use it.

Jobs never download: `local_weights` only looks in the local folder or the Hugging Face
cache, and a missing model is an EngineError that names the command that installs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine.families import size_multiple
from .engine.types import EngineError
from .gguf_files import GgufError, read_gguf
from .json_files import read_config
from .memory.cards import CardError, cards_of
from .memory.components import Component, ComponentError, folder_components, hidden_width
from .memory.plan import Choice, PlanError, plan_for
from .models import ImageModel


def install_hint(model: ImageModel) -> str:
    if model.key == "tiny-flux":
        return "python manage.py build_default_model"
    if model.repo_id:
        return f"python manage.py pull_model {model.key}"
    return f"copy the diffusers folder to {model.resolved_local_path}"


def local_weights(model: ImageModel) -> Path:
    if model.repo_id:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return Path(snapshot_download(model.repo_id, revision=model.revision or None, local_files_only=True))
        except LocalEntryNotFoundError:
            raise EngineError(
                f"Model {model.name!r} ({model.source}) is not in this worker's Hugging Face cache; "
                f"run `{install_hint(model)}` on a machine with internet and share the cache."
            ) from None
    path = model.resolved_local_path
    if not (path / "model_index.json").is_file():
        raise EngineError(f"Model {model.name!r} is not installed at {path}; run `{install_hint(model)}`.")
    return path


def folder_size(path: Path) -> int:
    """Bytes under `path`, following the HF cache's symlinks into its blob store."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def pull(model: ImageModel, *, token: str | None = None) -> Path:
    """Download a repo into the Hugging Face cache (needs internet; never called by a job)."""
    from huggingface_hub import snapshot_download

    if not model.repo_id:
        raise EngineError(f"{model.name} has no Hugging Face repo id; copy its folder to {model.resolved_local_path}.")
    return Path(snapshot_download(model.repo_id, revision=model.revision or None, token=token))


def installed_folders(family: str) -> list[tuple[str, str, Path]]:
    """(key, name, folder) of the models of a family whose weights are on this machine."""
    folders = []
    for model in ImageModel.objects.filter(family=family):
        try:
            folders.append((model.key, model.name, local_weights(model)))
        except EngineError:
            continue
    return folders


def _config(folder: Path, component: str) -> dict[str, Any]:
    try:
        return read_config(folder / component / "config.json")
    except (OSError, ValueError):
        return {}


def vae_scale(folder: Path) -> int:
    """How many pixels one latent covers, as the pipelines compute it from the VAE's config."""
    vae = _config(folder, "vae")
    if isinstance(vae.get("temperal_downsample"), list):  # Qwen-Image's video-style VAE
        return int(2 ** len(vae["temperal_downsample"]))
    if isinstance(vae.get("block_out_channels"), list):
        return int(2 ** (len(vae["block_out_channels"]) - 1))
    return 8


def size_limits(folder: Path, family: str) -> dict[str, Any]:
    """The sizes a model can draw, from its own configs (no weights, no torch), for the web
    process to check at submission: {"multiple": 16, "max_side": 1536, "why": "..."}.

    A learned position table caps the side: SD3's `pos_embed_max_size` patches (diffusers:
    "Height cannot be greater than pos_embed_max_size"), Z-Image's `axes_lens` of rotary
    positions. FLUX, FLUX.2, Qwen-Image and SDXL compute positions for any size; HiDream renders
    about one megapixel whatever the size asked for.
    """
    denoiser = _config(folder, "transformer") or _config(folder, "unet")
    scale = vae_scale(folder)
    limits: dict[str, Any] = {"multiple": size_multiple(family)}
    patch = denoiser.get("patch_size") or (denoiser.get("all_patch_size") or [1])[0]
    table: tuple[str, int] | None = None
    if isinstance(denoiser.get("pos_embed_max_size"), int):
        table = ("pos_embed_max_size", denoiser["pos_embed_max_size"])
    elif isinstance(denoiser.get("axes_lens"), list) and len(denoiser["axes_lens"]) == 3:
        table = ("axes_lens", min(denoiser["axes_lens"][1:]))  # (caption/frame, height, width)
    if table:
        name, size = table
        limits |= {"max_side": size * patch * scale, "why": f"{name} {size} × patch {patch} × VAE {scale}"}
    return limits


def installed_components(model: ImageModel) -> list[Component] | None:
    """A model's components weighed from its headers where its weights are on this machine (a
    GGUF transformer at its file's size); None where they are not (planned once they are)."""
    try:
        folder = local_weights(model)
    except EngineError:
        return None
    try:
        components = folder_components(folder)
    except (ComponentError, OSError, ValueError):
        return None  # weights in another format: _check_local_pipeline says what is wrong with the folder
    if model.gguf_path is None:
        return components
    try:
        info = read_gguf(model.gguf_path)
    except GgufError:
        return None  # the entry's clean() says what is wrong with the file
    name, klass = denoiser_of(folder)
    width = next((c.width for c in components if c.name == name), 0) or hidden_width(_config(folder, name))
    return [*(c for c in components if c.name != name), Component(name, klass, info.params, info.params, width)]


def gguf_choices(model: ImageModel) -> dict[str, Choice]:
    """A GGUF transformer's precision is its file's: the plan keeps it (Q4_K counts as Q4_K)."""
    if model.gguf_path is None:
        return {}
    try:
        info = read_gguf(model.gguf_path)
        name, _ = denoiser_of(local_weights(model))
    except (GgufError, EngineError, OSError, ValueError):
        return {}
    return {name: Choice(info.main_type)}


def denoiser_of(folder: Path) -> tuple[str, str]:
    """The folder's denoiser: its name in model_index.json (transformer, or unet for SDXL) and class."""
    index = read_config(folder / "model_index.json")
    for name in ("transformer", "unet"):
        value = index.get(name)
        if isinstance(value, list) and len(value) == 2 and isinstance(value[1], str):
            return name, value[1]
    raise EngineError(f"{folder.name} names no transformer or unet in its model_index.json.")


def memory_plans(model: ImageModel, cards: str) -> list[str]:
    """One line per card: how it holds the installed model (with the entry's `memory` option)."""
    components = installed_components(model)
    if components is None:
        return [f"Not installed on this machine: `{install_hint(model)}`, then save again to see its plan."]
    try:
        chosen = cards_of(cards)
    except CardError as exc:
        return [str(exc)]
    lines = []
    for card in chosen:
        try:
            overrides = (model.options or {}).get("memory")
            plan = plan_for(components, card, overrides=overrides, given=gguf_choices(model))
        except PlanError as exc:
            lines.append(f"{card.name}: {exc}")
            continue
        verdict = "" if plan.fits and not plan.sequential else (" (streamed: slow)" if plan.fits else " (does NOT fit)")
        lines.append(f"{card.name}{verdict}: {plan.summary()}")
    return lines


def installed_size_limits(model: ImageModel) -> dict[str, Any]:
    """A model's limits where its weights are on this machine; {} (no limits known) where not."""
    try:
        return size_limits(local_weights(model), model.family)
    except EngineError:
        return {}
