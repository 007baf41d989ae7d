"""Where a registry entry's weights are on this machine. No torch here: the web process,
the management commands and the workers all use it.

Jobs never download: `local_weights` only looks in the local folder or the Hugging Face
cache, and a missing model is an EngineError that names the command that installs it.
"""

from __future__ import annotations

from pathlib import Path

from .engine.types import EngineError
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


def is_installed(model: ImageModel) -> bool:
    try:
        local_weights(model)
    except EngineError:
        return False
    return True


def folder_size(path: Path) -> int:
    """Bytes under `path`, following the HF cache's symlinks into its blob store."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def pull(model: ImageModel, *, token: str | None = None) -> Path:
    """Download a repo into the Hugging Face cache (needs internet; never called by a job)."""
    from huggingface_hub import snapshot_download

    if not model.repo_id:
        raise EngineError(f"{model.name} has no Hugging Face repo id; copy its folder to {model.resolved_local_path}.")
    return Path(snapshot_download(model.repo_id, revision=model.revision or None, token=token))


def installed_folders(family: str) -> list[tuple[str, Path]]:
    """(name, folder) of the models of a family whose weights are on this machine."""
    folders = []
    for model in ImageModel.objects.filter(family=family):
        try:
            folders.append((model.name, local_weights(model)))
        except EngineError:
            continue
    return folders
