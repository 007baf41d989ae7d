"""What every diffusers-backed adapter shares: loading, placement, batching, LoRAs, progress.

A family module subclasses `DiffusersEngine`, names its pipeline class and says how a request
becomes that pipeline's call arguments (`call_kwargs`). Everything else is the same for all
families and lives here once.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from PIL import Image

from ..lora_files import LoraError
from .devices import (
    default_dtype,
    free_memory,
    is_out_of_memory,
    place,
    place_by_plan,
    resolve_device,
    stored_bytes,
)
from .edges import canny_edges
from .families import size_multiple
from .ip_adapters import split_ip_adapter
from .latent_previews import FIT_LATENT_SIDE, FIT_LATENTS, Decoder, LatentPreviewer, fit_or_none, vae_decoder
from .loras import weights_for
from .prompts import cut_notes, readers
from .quantize import bridge_precisions, load_kwargs
from .speed import Speed
from .types import (
    ControlNetSpec,
    EngineError,
    GenerationRequest,
    ImagesCallback,
    IPAdapterSpec,
    LoraSpec,
    OutOfMemory,
    PreviewCallback,
    StepCallback,
    without_paths,
)

log = logging.getLogger(__name__)

# Called by the step callback with the pipeline and the step's latents.
PreviewHook = Callable[[Any, torch.Tensor], None]


class DiffusersEngine:
    family: ClassVar[str]
    pipeline_class: ClassVar[Any]
    # The family's img2img twin, built on the same weights with `from_pipe` (None: the family has none).
    img2img_class: ClassVar[Any] = None
    # Its inpaint twin, the same way (None: the family cannot repaint a mask).
    inpaint_class: ClassVar[Any] = None
    # Style references through an IP-Adapter add-on (diffusers' IPAdapterMixin on a UNet, or
    # FluxIPAdapterMixin on FLUX.1's transformer).
    supports_ip_adapter: ClassVar[bool] = False
    # A sketch's structure through a ControlNet add-on: the family's ControlNet pipeline (from_pipe
    # with the add-on's model), its ControlNet class, and the call argument that takes the image.
    controlnet_pipeline_class: ClassVar[Any] = None
    controlnet_model_class: ClassVar[Any] = None
    control_image_argument: ClassVar[str] = "control_image"
    # Instruction edits: the base pipeline's argument for the image(s) to change ("" where none).
    edit_argument: ClassVar[str] = ""
    # Style references through the base pipeline's own image input ("": through an IP-Adapter).
    reference_argument: ClassVar[str] = ""

    def __init__(
        self,
        path: Path,
        *,
        device: str = "auto",
        options: dict[str, Any] | None = None,
        plan: dict[str, Any] | None = None,
        speed: dict[str, Any] | None = None,
    ) -> None:
        path = Path(path)
        if not (path / "model_index.json").is_file():
            raise EngineError(f"No {self.family} pipeline at {path} (model_index.json is missing).")
        self.options = options or {}
        self.device = resolve_device(device)
        self.dtype = default_dtype(self.device)
        # The memory plan the worker chose for its card (generation/memory/plan.py): each
        # component's precision and placement; None keeps everything in self.dtype.
        self.plan = plan
        self.load_kwargs = load_kwargs(path, plan, self.device, self.dtype, gguf=self.options.get("gguf", ""))
        # local_files_only: a worker must never download weights at job time.
        self.pipe = self.load(path)
        bridge_precisions(self.pipe, self.dtype)
        if plan and plan.get("components") and self.device.type == "cuda":
            self.memory_mode = place_by_plan(self.pipe, self.device, plan)
        else:
            self.memory_mode = place(self.pipe, self.device, self.options.get("memory_mode", "auto"))
        self.pipe.set_progress_bar_config(disable=True)
        # The speed profile the worker resolved (generation/speed/): attention, LoRA slots, compile.
        self.speed = Speed(self.pipe, speed, self.device)
        self._adapters: dict[Path, str] = {}
        self._img2img: Any = None
        self._inpaint: Any = None
        # IP-Adapters read once per worker (weights, image encoder), attached to the jobs that
        # ask for one and taken off before the next job that does not.
        self._ip_adapters: dict[IPAdapterSpec, tuple[dict[str, Any], Any]] = {}
        # ... and, once attached, what diffusers' loader built from them: the denoiser's
        # attention processors and image projection, put back as they are by every later job.
        self._ip_built: dict[IPAdapterSpec, tuple[dict[str, Any], Any, Any]] = {}
        self._ip_attached: IPAdapterSpec | None = None
        self._control_pipes: dict[ControlNetSpec, Any] = {}  # ControlNets read once per worker
        self._refiner: Any = None  # SDXL's refiner checkpoint, loaded by the first refiner pass
        self._previewer: LatentPreviewer | None = None
        self._previewer_fitted = False
        log.info("Loaded %s from %s on %s (%s, %s)", self.family, path, self.device, self.dtype, self.memory_mode)

    def load(self, path: Path) -> Any:
        return self.pipeline_class.from_pretrained(path, local_files_only=True, **self.load_kwargs)

    def call_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        """Family-specific arguments of the pipeline call (guidance, negative prompt...)."""
        return {"guidance_scale": request.guidance_scale}

    @property
    def supports_img2img(self) -> bool:
        return self.img2img_class is not None

    @property
    def memory_bytes(self) -> int:
        """The base weights and everything read for jobs since: ControlNets, IP-Adapters (their
        encoders and weights), the refiner; each module counted once (twins share the base's)."""
        modules: dict[int, torch.nn.Module] = {}
        pipes = [self.pipe, *self._control_pipes.values(), *([self._refiner] if self._refiner is not None else [])]
        for pipe in pipes:
            modules |= {id(m): m for m in pipe.components.values() if isinstance(m, torch.nn.Module)}
        for _weights, encoder in self._ip_adapters.values():
            modules[id(encoder)] = encoder
        for processors, projection, _extractor in self._ip_built.values():
            built = [*processors.values(), projection]
            modules |= {id(m): m for m in built if isinstance(m, torch.nn.Module)}
        # By tensor: an attached IP-Adapter's processors are also inside the denoiser.
        tensors = {id(t): t for m in modules.values() for t in (*m.parameters(), *m.buffers())}
        raw = [t for weights, _ in self._ip_adapters.values() for part in weights.values() for t in part.values()]
        tensors |= {id(t): t for t in raw}
        return sum(stored_bytes(t) for t in tensors.values())

    def unread_addons(self, request: GenerationRequest) -> list[Path]:
        """The folders of this job's add-ons that this engine (or, for a depth estimator, which
        engines share, this worker) has not read yet."""
        folders = []
        if request.controlnet is not None and request.control_image is not None:
            folders += [] if request.controlnet in self._control_pipes else [request.controlnet.folder]
        if request.ip_adapter is not None and request.references and request.ip_adapter not in self._ip_adapters:
            folders.append(request.ip_adapter.folder)
        if request.control_edges == "depth" and request.depth_estimator is not None:
            # The depth module counts in the memory budget once imported (worker/engines): only depth jobs import it.
            from .depth import is_read

            folders += [] if is_read(request.depth_estimator) else [request.depth_estimator]
        return folders

    def speed_record(self, quality: str) -> dict[str, Any]:
        return self.speed.record(quality)

    def unload(self) -> None:
        del self.pipe
        self._img2img = self._inpaint = self._refiner = None
        self._control_pipes.clear()
        free_memory(self.device)

    def generate(
        self,
        request: GenerationRequest,
        *,
        max_batch: int,
        on_step: StepCallback,
        on_images: ImagesCallback,
        on_preview: PreviewCallback | None = None,
    ) -> None:
        # 1. validate
        self.validate(request)
        # 2. attach LoRAs and add-ons (and detach them afterwards so no state leaks into the next job)
        self._use_loras(request.loras)
        through_adapter = bool(request.references) and not self.reference_argument
        self._use_ip_adapter(request.ip_adapter if through_adapter else None)
        if through_adapter:
            self.pipe.set_ip_adapter_scale(request.reference_strength)
        try:
            # 3. run the seeds in batches, halving the batch when the GPU runs out of memory
            done, batch = 0, max(1, min(max_batch, len(request.seeds)))
            while done < len(request.seeds):
                seeds = request.seeds[done : done + batch]
                try:
                    preview = self._preview_hook(on_preview, done, request)
                    images = self._run(request, seeds, on_step, preview=preview)
                except Exception as exc:
                    if not is_out_of_memory(exc):
                        raise
                    free_memory(self.device)
                    if batch == 1:
                        raise OutOfMemory(
                            f"Out of GPU memory for one {request.width}x{request.height} image; pick a smaller size."
                        ) from exc
                    batch //= 2
                    log.warning("Out of memory; retrying with batches of %d", batch)
                    continue
                # 4. collect
                on_images(done, images)
                done += len(seeds)
        finally:
            if self.speed.slots is not None:
                self.speed.slots.clear()
            elif self._adapters:
                self.pipe.disable_lora()

    def prompt_notes(self, prompt: str, *, typed: tuple[int, int] | None = None) -> list[str]:
        """What of the prompt this model's text encoders cut off, one sentence per encoder (with
        `typed`, only cuts into that span: the designer's own words)."""
        encoders = readers(self.family, self.pipe, self.options.get("max_sequence_length"))
        return cut_notes(prompt, encoders, typed=typed)

    def validate(self, request: GenerationRequest) -> None:
        multiple = self.size_multiple
        if request.width % multiple or request.height % multiple:
            raise EngineError(
                f"{self.family} needs sizes in multiples of {multiple}; got {request.width}x{request.height}."
            )
        if request.mask_image is not None:
            if self.inpaint_class is None:
                raise EngineError(f"{self.family} models cannot repaint part of an image (no inpaint pipeline).")
            if request.init_image is None:
                raise EngineError("An inpaint job needs the image it repaints.")
        elif request.init_image is not None and not self.supports_img2img:
            raise EngineError(f"{self.family} models cannot start from an image (no img2img pipeline).")
        if request.edit_images:
            if not self.edit_argument:
                raise EngineError(f"{self.family} models cannot follow an edit instruction (no edit pipeline).")
            if request.init_image is not None or request.mask_image is not None or request.control_image is not None:
                raise EngineError("An edit goes with its instruction alone.")
        if request.control_image is not None:
            if self.controlnet_pipeline_class is None or request.controlnet is None:
                raise EngineError(f"{self.family} models here take no ControlNet.")
            if request.init_image is not None or request.mask_image is not None or request.references:
                raise EngineError("A ControlNet sketch goes with a description alone.")
        if request.references:
            if not self.reference_argument and (not self.supports_ip_adapter or request.ip_adapter is None):
                raise EngineError(f"{self.family} models here take no style references (no IP-Adapter).")
            if request.init_image is not None or request.mask_image is not None:
                raise EngineError("Style references go with a description alone, not with a sketch or an image.")

    @property
    def size_multiple(self) -> int:
        """The grid sizes must be on (16; 8 for SDXL's unpatched UNet), as the web side knows it too."""
        return size_multiple(self.family)

    def _run(
        self, request: GenerationRequest, seeds: list[int], on_step: StepCallback, *, preview: PreviewHook | None = None
    ) -> list[Any]:
        pipe = self._pipe_for(request)
        # Each job gets its own scheduler: schedulers keep per-run state.
        pipe.scheduler = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
        # CPU generators make a seed mean the same image on any device.
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]

        last: dict[str, torch.Tensor] = {}

        def callback(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            on_step(step + 1, pipe.num_timesteps)
            if preview is not None:
                preview(pipe, denoised_estimate(pipe.scheduler, kwargs["latents"], last))
            return kwargs

        # Large outputs decode tile by tile so the VAE does not need the whole image in memory.
        tiled = max(request.width, request.height) >= 2048 and hasattr(pipe.vae, "enable_tiling")
        if tiled:
            pipe.vae.enable_tiling()
        try:
            return self._call(pipe, request, generators, callback)
        finally:
            if tiled:
                pipe.vae.disable_tiling()

    # --- live previews

    @property
    def previewer(self) -> LatentPreviewer | None:
        """Fitted on the first job that asks for previews, then kept with the engine (None: this
        model gives none). Not at load: engines loaded for other work never pay for it."""
        if not self._previewer_fitted:
            self._previewer, self._previewer_fitted = self._fit_previewer(), True
        return self._previewer

    def _fit_previewer(self) -> LatentPreviewer | None:
        vae = getattr(self.pipe, "vae", None)
        if vae is None:
            return None
        return fit_or_none(lambda: self._fit(vae), family=self.family)

    def _fit(self, vae: Any) -> LatentPreviewer:
        weights = next(vae.parameters())  # where the VAE is placed (the GPU, or the CPU when offloaded)
        generator = torch.Generator("cpu").manual_seed(0)
        noise = torch.randn(FIT_LATENTS, *self.preview_noise_shape(vae, FIT_LATENT_SIDE), generator=generator)
        latents = self.preview_denormalize(self.pipe, noise.to(weights.device, weights.dtype))
        # Half-precision VAEs that the pipeline upcasts to decode (SDXL's) are upcast for the fit too.
        upcast = bool(getattr(vae.config, "force_upcast", False)) and weights.dtype == torch.float16
        if upcast:
            vae.to(torch.float32)
        try:
            return LatentPreviewer.fit(latents.to(next(vae.parameters()).dtype), self.preview_decoder(vae))
        finally:
            if upcast:
                vae.to(weights.dtype)

    def preview_noise_shape(self, vae: Any, side: int) -> tuple[int, int, int]:
        """(channels, h, w) of the pipeline's latents, unpacked, for an image `side` latent pixels wide."""
        return int(vae.config.latent_channels), side, side

    def preview_decoder(self, vae: Any) -> Decoder:
        """Latents in the VAE's space -> images in [-1, 1], (batch, 3, H, W), for fitting the previewer."""
        return vae_decoder(vae)

    def preview_latents(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """A step's latents as the VAE reads them, (batch, channels, h, w): what the pipeline does to
        its latents just before `vae.decode`."""
        return self.preview_denormalize(pipe, self.preview_unpack(pipe, latents, width, height))

    def preview_unpack(self, pipe: Any, latents: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """Packed latents (tokens) back to (batch, channels, h, w); families that pack override it."""
        return latents

    def preview_denormalize(self, pipe: Any, latents: torch.Tensor) -> torch.Tensor:
        """The pipeline's latent scaling undone, as before its `vae.decode`."""
        config = pipe.vae.config
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:  # SDXL-style per-channel statistics
            shape = (1, -1, 1, 1)
            mean_t = torch.tensor(mean, device=latents.device, dtype=latents.dtype).view(shape)
            std_t = torch.tensor(std, device=latents.device, dtype=latents.dtype).view(shape)
            return latents * std_t / config.scaling_factor + mean_t
        return latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)

    def draw_previews(self, pipe: Any, latents: torch.Tensor, request: GenerationRequest) -> list[Image.Image]:
        """The batch's images as they stand at this step, small (see previews.PREVIEW_SIDE)."""
        if self.previewer is None:
            return []
        width, height = self.render_size(request.width, request.height)
        return self.previewer.draw(self.preview_latents(pipe, latents, width, height), (request.width, request.height))

    def _preview_hook(
        self, on_preview: PreviewCallback | None, first: int, request: GenerationRequest
    ) -> PreviewHook | None:
        """What the step callback calls with the latents: it hands the caller a drawing function,
        so the latents are turned into images only when the caller wants a preview."""
        if on_preview is None or self.previewer is None:
            return None

        def hook(pipe: Any, latents: torch.Tensor) -> None:
            on_preview(first, lambda: self.draw_previews(pipe, latents, request))

        return hook

    def _control_pipe(self, spec: ControlNetSpec) -> Any:
        """The family's ControlNet pipeline on the loaded weights with this add-on's ControlNet
        (read once per worker; the base pipeline never holds it, so other jobs are unaffected)."""
        if spec not in self._control_pipes:
            try:
                controlnet = self.controlnet_model_class.from_pretrained(
                    spec.folder, local_files_only=True, dtype=self.dtype
                ).to(self.pipe.device)
            except Exception as exc:  # diffusers' own errors too: a folder, not a bug
                reason = without_paths(str(exc))
                raise EngineError(f"The ControlNet in {spec.folder.name} cannot be read: {reason}") from exc
            pipe = twin(self.controlnet_pipeline_class, self.pipe, controlnet=controlnet)
            pipe.set_progress_bar_config(disable=True)
            self._control_pipes[spec] = pipe
        return self._control_pipes[spec]

    def _use_ip_adapter(self, spec: IPAdapterSpec | None) -> None:
        """Attach `spec`'s IP-Adapter to the UNet (read from disk once per worker), or take the
        attached one off: the next job without references draws as if none was ever loaded."""
        if spec == self._ip_attached:
            return
        if self._ip_attached is not None:
            self.pipe.unload_ip_adapter()
            self._ip_attached = None
        if spec is None:
            return
        if spec in self._ip_built:
            self._reattach_ip_adapter(spec)
        else:
            weights, encoder = self._ip_adapter_files(spec)
            self.pipe.register_modules(image_encoder=encoder)  # so the loader reads no encoder of its own
            self.pipe.load_ip_adapter(weights, subfolder="", weight_name=spec.weight_name)
            denoiser = self._denoiser()
            processors = dict(denoiser.attn_processors)
            extractor = getattr(self.pipe, "feature_extractor", None)
            self._ip_built[spec] = (processors, denoiser.encoder_hid_proj, extractor)
            self._ip_adapters[spec] = ({}, encoder)  # the built processors hold the weights now
        self._ip_attached = spec

    def _reattach_ip_adapter(self, spec: IPAdapterSpec) -> None:
        """What load_ip_adapter leaves on the pipeline, put back without building it again:
        building copies every weight and moves the whole denoiser, a fifth of a tiny model's
        load, where this is a few dictionary writes."""
        processors, projection, extractor = self._ip_built[spec]
        denoiser = self._denoiser()
        denoiser.set_attn_processor(dict(processors))
        denoiser.encoder_hid_proj = projection
        denoiser.config.encoder_hid_dim_type = "ip_image_proj"  # as the loader sets it
        self.pipe.register_modules(image_encoder=self._ip_adapters[spec][1])
        if extractor is not None:
            self.pipe.register_modules(feature_extractor=extractor)

    def _denoiser(self) -> Any:
        return getattr(self.pipe, "unet", None) or self.pipe.transformer

    def _ip_adapter_files(self, spec: IPAdapterSpec) -> tuple[dict[str, Any], Any]:
        if spec not in self._ip_adapters:
            from safetensors.torch import load_file
            from transformers import CLIPVisionModelWithProjection

            try:
                flat = load_file(spec.folder / spec.weight_name)
                encoder = CLIPVisionModelWithProjection.from_pretrained(
                    spec.folder / "image_encoder", local_files_only=True, dtype=self.dtype
                ).to(self.pipe.device)
            except Exception as exc:  # safetensors' and transformers' own errors too: a file, not a bug
                reason = without_paths(str(exc))
                raise EngineError(f"The IP-Adapter in {spec.folder.name} cannot be read: {reason}") from exc
            weights = split_ip_adapter({key: tensor.to(self.dtype) for key, tensor in flat.items()})
            self._ip_adapters[spec] = (weights, encoder)
        return self._ip_adapters[spec]

    def _pipe_for(self, request: GenerationRequest) -> Any:
        if request.control_image is not None and request.controlnet is not None:
            return self._control_pipe(request.controlnet)
        if request.mask_image is not None:
            return self.inpaint_pipe
        return self.pipe if request.init_image is None else self.img2img_pipe

    @property
    def inpaint_pipe(self) -> Any:
        """The inpaint pipeline on this pipeline's loaded modules (and LoRAs), as img2img_pipe."""
        if self._inpaint is None:
            self._inpaint = twin(self.inpaint_class, self.pipe)
            self._inpaint.set_progress_bar_config(disable=True)
        return self._inpaint

    @property
    def img2img_pipe(self) -> Any:
        """The img2img pipeline, sharing this pipeline's loaded modules (and LoRAs): no second copy."""
        if self._img2img is None:
            self._img2img = twin(self.img2img_class, self.pipe)
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

    def _call(
        self, pipe: Any, request: GenerationRequest, generators: list[torch.Generator], callback: Any
    ) -> list[Any]:
        width, height = self.render_size(request.width, request.height)
        kwargs = {
            "prompt": request.prompt,
            "width": width,
            "height": height,
            "num_inference_steps": request.steps,
            "num_images_per_prompt": len(generators),
            "generator": generators,
            "callback_on_step_end": callback,
            **self.call_kwargs(request),
        }
        size = (width, height)
        if request.init_image is not None:
            image = request.init_image.convert("RGB")
            kwargs.update(image=image if image.size == size else image.resize(size), strength=request.strength)
        if request.edit_images:
            kwargs[self.edit_argument] = self.edit_inputs([image.convert("RGB") for image in request.edit_images], size)
        if request.control_image is not None:
            control = request.control_image.convert("RGB")
            control = control if control.size == size else control.resize(size, Image.Resampling.LANCZOS)
            control = self.derived_control(control, request)
            kwargs[self.control_image_argument] = control
            kwargs["controlnet_conditioning_scale"] = request.control_scale
        if request.references and self.reference_argument:
            # The pipeline's own reference images, after the image an edit changes (its first).
            references = [image.convert("RGB") for image in request.references]
            kwargs[self.reference_argument] = [*kwargs.get(self.reference_argument, []), *references]
        elif request.references:
            # One adapter, several images: diffusers takes them as one list for that adapter.
            kwargs["ip_adapter_image"] = [[image.convert("RGB") for image in request.references]]
        if request.mask_image is not None:
            mask = request.mask_image.convert("L")
            kwargs["mask_image"] = mask if mask.size == size else mask.resize(size, Image.Resampling.NEAREST)
        # Some img2img pipelines (SDXL's) take the size from the image and have no width/height.
        accepted = inspect.signature(pipe.__call__).parameters
        kwargs = {k: v for k, v in kwargs.items() if k not in ("width", "height") or k in accepted}
        try:
            with self.speed.running(request.quality), torch.inference_mode():
                result = pipe(**kwargs)
        except Exception as exc:
            if not self.speed.compile_failed(exc):
                raise
            kwargs["generator"] = [torch.Generator("cpu").manual_seed(g.initial_seed()) for g in generators]
            with self.speed.running(request.quality), torch.inference_mode():
                result = pipe(**kwargs)
        # At the render size, not the size asked: finishing's size stage brings them there (with an
        # upscaler). Pipelines that draw a size of their own (HiDream: about a megapixel) are resized to it.
        return [img if img.size == size else img.resize(size, Image.Resampling.LANCZOS) for img in result.images]

    def derived_control(self, control: Image.Image, request: GenerationRequest) -> Image.Image:
        """What the ControlNet follows, made from the sketch at the size the model draws: its canny
        edges, or its depth map by the job's depth estimator; else the image as it is (a tile)."""
        if request.control_edges == "canny":
            return canny_edges(control)
        if request.control_edges == "depth":
            if request.depth_estimator is None or not request.depth_estimator.is_dir():
                raise EngineError("This job follows a sketch's depth, but its depth estimator is not on this worker.")
            from .depth import depth_map  # imported by depth jobs only, as above

            return depth_map(control, request.depth_estimator, self.device)
        return control

    def edit_inputs(self, images: list[Image.Image], size: tuple[int, int]) -> list[Image.Image]:
        """The images an edit changes, as the pipeline takes them (as they are: FLUX.2 klein sizes
        its references itself)."""
        return images

    def refine(self, images: list[Image.Image], request: GenerationRequest, *, strength: float) -> list[Image.Image]:
        """The refiner pass: img2img at `strength` over finished renders, at the render size, with
        the request's prompt, guidance and LoRAs and one generator per image from its seed. SDXL
        uses its refiner checkpoint where the entry's options name one; families without img2img
        raise EngineError (the pipeline skips the stage and says so)."""
        if not self.supports_img2img:
            raise EngineError(f"{self.family} has no img2img pipeline; the refiner is skipped.")
        if not 0 < strength <= 1:
            raise EngineError(f"The refiner's strength is between 0 and 1 (exclusive of 0), not {strength}.")
        if len(images) > len(request.seeds):
            raise EngineError(f"The refiner got {len(images)} images but {len(request.seeds)} seeds.")
        self.validate(request)
        pipe = self.refiner_pipe
        # LoRAs are for the base weights; a separate refiner checkpoint runs without them.
        own_weights = pipe is not self._refiner
        if own_weights:
            self._use_loras(request.loras)
        refined: list[Image.Image] = []
        try:
            for image, seed in zip(images, request.seeds, strict=False):
                pipe.scheduler = pipe.scheduler.__class__.from_config(pipe.scheduler.config)
                # img2img runs steps x strength of the steps; at least one, or there is no pass at all.
                steps = max(request.steps, math.ceil(1 / strength))
                start = replace(
                    request,
                    init_image=image.convert("RGB"),
                    strength=strength,
                    steps=steps,
                    # The render already followed its mask, references, ControlNet or edit: a plain pass.
                    mask_image=None,
                    references=[],
                    control_image=None,
                    edit_images=[],
                )
                generators = [torch.Generator("cpu").manual_seed(seed)]
                refined.extend(self._call(pipe, start, generators, lambda pipe, step, t, kwargs: kwargs))
        finally:
            if own_weights and self.speed.slots is not None:
                self.speed.slots.clear()
            elif own_weights and self._adapters:
                self.pipe.disable_lora()
        return refined

    @property
    def refiner_pipe(self) -> Any:
        """What the refiner pass runs: the img2img twin on the same weights, or the refiner
        checkpoint the entry's options name (SDXL's `refiner`: a local folder of the family's
        img2img pipeline), loaded on first use and placed like the base."""
        folder = self.options.get("refiner")
        if not folder:
            return self.img2img_pipe
        if self._refiner is None:
            path = Path(folder)
            if not (path / "model_index.json").is_file():
                raise EngineError(f"No refiner pipeline at {path.name} (model_index.json is missing).")
            refiner = self.img2img_class.from_pretrained(path, dtype=self.dtype, local_files_only=True)
            place(refiner, self.device, self.options.get("memory_mode", "auto"))
            refiner.set_progress_bar_config(disable=True)
            self._refiner = refiner
        return self._refiner

    def render_size(self, width: int, height: int) -> tuple[int, int]:
        """The size the pipeline draws at, and the size of the images it returns: as asked, or
        within the model's `native_size` (a small model trained at one resolution draws there;
        finishing's size stage brings the images to the size asked for)."""
        native = self.options.get("native_size")
        if not native or max(width, height) <= native:
            return width, height
        scale, grid = native / max(width, height), self.size_multiple
        return max(grid, round(width * scale / grid) * grid), max(grid, round(height * scale / grid) * grid)

    def _use_loras(self, loras: list[LoraSpec]) -> None:
        if self.speed.slots is not None:  # compiled: swapped into the slots, never a recompile
            self.speed.slots.use(loras, self.lora_weights)
            return
        if not loras:
            return
        names = [self._load_lora(lora.path) for lora in loras]
        self.pipe.enable_lora()
        try:
            self.pipe.set_adapters(names, adapter_weights=[lora.strength for lora in loras])
        except Exception as exc:
            raise EngineError(f"The LoRAs could not be combined: {lora_failure(exc)}") from exc

    def _load_lora(self, path: Path) -> str:
        if path not in self._adapters:
            if not path.is_file():
                raise EngineError(f"LoRA file {path.name} does not exist on this worker.")
            name = "lora_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
            try:
                self.pipe.load_lora_weights(self.lora_weights(path), adapter_name=name)
            except Exception as exc:
                self._forget_adapter(name)
                raise EngineError(f"Could not load LoRA {path.name}: {lora_failure(exc)}") from exc
            self._adapters[path] = name
        return self._adapters[path]

    def lora_weights(self, path: Path) -> str | dict[str, Any]:
        """What `load_lora_weights` gets: the file, which diffusers converts itself, or the studio's
        conversion of the formats diffusers gets wrong for this family (engine/loras.py)."""
        return weights_for(self.family, path, self.pipe)

    def _forget_adapter(self, name: str) -> None:
        """A load that failed half-way may leave the adapter's empty layers behind: drop them."""
        try:
            self.pipe.delete_adapters(name)
        except Exception:
            log.debug("No adapter %s to delete after a failed load", name)


def twin(cls: Any, pipe: Any, **extra: Any) -> Any:
    """`cls` (an img2img, inpaint or ControlNet pipeline) on `pipe`'s loaded modules, with no
    second copy. diffusers' from_pipe does this but then casts every module to one dtype (float32
    unless told), and the modules are shared: the base pipeline's would change with it (bf16
    weights doubled to fp32 on a GPU, a plan's fp32 T5 cut to fp16). Here the modules stay as
    loaded; the twin's settings come from the base pipeline's config, as from_pipe takes them."""
    expected, optional = cls._get_signature_keys(cls)
    components = pipe.components
    kwargs = {name: extra[name] if name in extra else components.get(name) for name in expected}
    config = dict(pipe.config)
    kwargs |= {name: extra.get(name, config.get(name)) for name in optional if name in extra or name in config}
    made = cls(**{k: v for k, v in kwargs.items() if v is not None or k in expected})
    made.set_progress_bar_config(disable=True)
    return made


def denoised_estimate(scheduler: Any, latents: torch.Tensor, last: dict[str, torch.Tensor]) -> torch.Tensor:
    """What a flow-matching run's latents are heading for, x0 = x - sigma * v, with the velocity v
    read off this step's latents and the last step's (kept in `last`). ComfyUI and InvokeAI preview
    this denoised estimate: the noisy latents themselves show noise until the last steps. Other
    schedulers, and the first step, give the latents as they are."""
    previous, last["latents"] = last.get("latents"), latents
    sigmas, index = getattr(scheduler, "sigmas", None), getattr(scheduler, "step_index", None)
    flow = "FlowMatch" in type(scheduler).__name__
    if not flow or previous is None or sigmas is None or not index or previous.shape != latents.shape:
        return latents
    now, before = float(sigmas[index]), float(sigmas[index - 1])
    if now == before:
        return latents
    velocity = (latents - previous) / (now - before)
    return latents - now * velocity


def lora_failure(exc: Exception) -> str:
    """What went wrong loading a LoRA, for the designer: never a server path, never empty."""
    if isinstance(exc, LoraError):
        return str(exc)
    # The first lines say what did not fit ("size mismatch for ...: copying a param with shape ...").
    detail = " ".join(line.strip() for line in without_paths(str(exc)).splitlines()[:2] if line.strip())
    reason = f"{exc.__class__.__name__}: {detail[:400]}" if detail else exc.__class__.__name__
    return f"its layers do not match this model ({reason})."
