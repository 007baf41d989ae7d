"""Build small, architecture-true pipelines offline (random weights, tokenizers made here).

They let a laptop without GPU or internet run the studio, and let the tests drive the
exact loading code that real weights go through (`from_pretrained` on a folder).
Nothing here touches the network: tokenizers are trained from a few words with the
`tokenizers` library and every config is written by hand.
"""

from __future__ import annotations

import json
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    AutoencoderKLFlux2,
    AutoencoderKLQwenImage,
    ChromaPipeline,
    ChromaTransformer2DModel,
    EDMDPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Pipeline,
    Flux2Transformer2DModel,
    FluxPipeline,
    FluxTransformer2DModel,
    HiDreamImagePipeline,
    HiDreamImageTransformer2DModel,
    QwenImagePipeline,
    QwenImageTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
    ZImagePipeline,
    ZImageTransformer2DModel,
)
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    Mistral3Config,
    Mistral3ForConditionalGeneration,
    MistralConfig,
    PixtralVisionConfig,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3Model,
    T5Config,
    T5EncoderModel,
    T5TokenizerFast,
)

# Enough vocabulary for brief-style prompts; unknown words fall back to characters.
_WORDS = """
a an the of and with on in flat icon illustration logo premium product
brand style minimal vector solid background clean geometric shapes professional ui design centered composition
high contrast blue red green orange yellow purple grey white black circle square triangle
star heart cloud clipboard check gear person computer
""".split()


# --- tokenizers, built from a few words with the `tokenizers` library


def clip_tokenizer(folder: Path, max_length: int = 77) -> CLIPTokenizer:
    # A character-level BPE vocab with empty merges is a valid CLIP tokenizer (offline-models.md).
    symbols = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = {tok: i for i, tok in enumerate(symbols + [s + "</w>" for s in symbols])}
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length)


def t5_tokenizer(words: list[str] | None = None) -> T5TokenizerFast:
    """`words` join the vocabulary as whole pieces (the demo model's subjects: one token each)."""
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + word, -1.0) for word in _WORDS + [w for w in dict.fromkeys(words or []) if w not in _WORDS]]
    pieces += [(ch, -5.0) for ch in string.ascii_lowercase + string.digits + string.punctuation + "\u2581"]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    return T5TokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", extra_ids=0, model_max_length=512
    )


def byte_bpe_tokenizer(vocab_size: int = 256, **special: str) -> PreTrainedTokenizerFast:
    """A byte-level BPE like Llama's and Qwen's, trained on the word list."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([" ".join(_WORDS)] * 4, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, **special)


# Qwen3's chat layout, enough for the pipelines that wrap the prompt in a chat turn.
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def qwen_tokenizer() -> PreTrainedTokenizerFast:
    tokenizer = byte_bpe_tokenizer(
        vocab_size=384,
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        bos_token="<|im_start|>",
        unk_token="<|unk|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<think>", "</think>"]})
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


def qwen3_config(width: int, layers: int) -> Qwen3Config:
    return Qwen3Config(
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        vocab_size=512,
        max_position_embeddings=1024,
    )


# --- shared components


def clip_config(width: int, *, projection: int | None = None, positions: int = 77) -> CLIPTextConfig:
    return CLIPTextConfig(
        hidden_size=width,
        intermediate_size=2 * width,
        num_attention_heads=2,
        num_hidden_layers=1,
        vocab_size=256,
        max_position_embeddings=positions,
        projection_dim=projection or width,
        bos_token_id=136,
        eos_token_id=137,
        pad_token_id=137,
    )


def t5_encoder(width: int, *, vocab_size: int = 256) -> T5EncoderModel:
    shape = {"d_model": width, "d_ff": 2 * width, "d_kv": 16, "num_heads": 2, "num_layers": 1}
    config = T5Config(**shape, vocab_size=vocab_size, decoder_start_token_id=0)
    return T5EncoderModel(config)


def vae(latent_channels: int = 4, **kwargs: Any) -> AutoencoderKL:
    """Downsamples by 8 like the real VAEs, so sizes and packing behave as with real weights."""
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=4,
        **kwargs,
    )


def save(pipe: Any, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(folder)
    return folder


# --- one builder per family


def build_tiny_flux(
    folder: Path,
    *,
    seed: int = 0,
    width: int = 32,
    heads: int = 2,
    head_dim: int = 16,
    layers: int = 1,
    single_layers: int = 1,
    rope: tuple[int, int, int] = (4, 4, 8),
) -> Path:
    """A small FLUX.1 pipeline (about 1 MB as it stands): a 512x512 image is 32x32 tokens after
    2x2 packing. The keyword arguments grow it (the benchmark's mid-sized model)."""
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=layers,
        num_single_layers=single_layers,
        attention_head_dim=head_dim,
        num_attention_heads=heads,
        joint_attention_dim=width,
        pooled_projection_dim=width,
        axes_dims_rope=list(rope),
    )
    with tempfile.TemporaryDirectory() as scratch:
        pipe = FluxPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False),
            vae=vae(shift_factor=0.0609, scaling_factor=1.5035),
            text_encoder=CLIPTextModel(clip_config(width)),
            tokenizer=clip_tokenizer(Path(scratch)),
            text_encoder_2=t5_encoder(width),
            tokenizer_2=t5_tokenizer(),
            transformer=transformer,
        )
        return save(pipe, Path(folder))


def build_tiny_chroma(folder: Path, *, seed: int = 0) -> Path:
    """Chroma1: FLUX.1's transformer without the CLIP pooled input (an approximator makes its
    modulation from the timestep), one T5 encoder."""
    torch.manual_seed(seed)
    transformer = ChromaTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        axes_dims_rope=(4, 4, 8),
        approximator_num_channels=8,
        approximator_hidden_dim=32,
        approximator_layers=1,
    )
    pipe = ChromaPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False),
        vae=vae(shift_factor=0.0609, scaling_factor=1.5035),
        text_encoder=t5_encoder(32),
        tokenizer=t5_tokenizer(),
        transformer=transformer,
    )
    return save(pipe, Path(folder))


def build_tiny_flux_kontext(folder: Path, *, seed: int = 0) -> Path:
    """FLUX.1 Kontext: FLUX.1's own modules in FluxKontextPipeline (the image it edits joins the
    transformer's tokens, so the architecture is FLUX.1's)."""
    from diffusers import FluxKontextPipeline

    with tempfile.TemporaryDirectory() as scratch:
        flux = FluxPipeline.from_pretrained(build_tiny_flux(Path(scratch) / "flux", seed=seed))
        return save(FluxKontextPipeline(**flux.components), Path(folder))


def build_tiny_sd3(folder: Path, *, seed: int = 0) -> Path:
    """Stable Diffusion 3.5's MMDiT with its three text encoders (CLIP-L, CLIP-G, T5)."""
    torch.manual_seed(seed)
    clip_width, t5_width = 16, 32  # the two CLIP widths together must fit in the T5 width
    transformer = SD3Transformer2DModel(
        sample_size=32,
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        caption_projection_dim=16,
        joint_attention_dim=t5_width,
        pooled_projection_dim=2 * clip_width,
    )
    with tempfile.TemporaryDirectory() as scratch:
        pipe = StableDiffusion3Pipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=vae(shift_factor=0.0609, scaling_factor=1.5035),
            transformer=transformer,
            text_encoder=CLIPTextModelWithProjection(clip_config(clip_width)),
            tokenizer=clip_tokenizer(Path(scratch)),
            text_encoder_2=CLIPTextModelWithProjection(clip_config(clip_width)),
            tokenizer_2=clip_tokenizer(Path(scratch)),
            text_encoder_3=t5_encoder(t5_width),
            tokenizer_3=t5_tokenizer(),
        )
        return save(pipe, Path(folder))


def build_tiny_sdxl(folder: Path, *, seed: int = 0) -> Path:
    """SDXL's UNet with its two CLIP text encoders and micro-conditioning on size."""
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        transformer_layers_per_block=(1, 1),
        projection_class_embeddings_input_dim=6 * 8 + 32,
        cross_attention_dim=64,
        norm_num_groups=8,
    )
    with tempfile.TemporaryDirectory() as scratch:
        pipe = StableDiffusionXLPipeline(
            vae=vae(scaling_factor=0.13025),
            unet=unet,
            scheduler=EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012),
            text_encoder=CLIPTextModel(clip_config(32)),
            tokenizer=clip_tokenizer(Path(scratch)),
            text_encoder_2=CLIPTextModelWithProjection(clip_config(32)),
            tokenizer_2=clip_tokenizer(Path(scratch)),
        )
        return save(pipe, Path(folder))


def build_tiny_sdxl_turbo(folder: Path, *, seed: int = 0) -> Path:
    """SDXL Turbo: SDXL's architecture, distilled to run in 1-4 steps without guidance; its
    folder's scheduler is Euler ancestral with trailing timesteps."""
    pipe = StableDiffusionXLPipeline.from_pretrained(build_tiny_sdxl(Path(folder), seed=seed))
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config, timestep_spacing="trailing")
    return save(pipe, Path(folder))


def build_tiny_playground(folder: Path, *, seed: int = 0) -> Path:
    """Playground v2.5: SDXL's architecture on the EDM noise schedule, its VAE's latents
    normalised by a per-channel mean and deviation (which the pipeline reads from the VAE's config)."""
    pipe = StableDiffusionXLPipeline.from_pretrained(build_tiny_sdxl(Path(folder), seed=seed))
    pipe.scheduler = EDMDPMSolverMultistepScheduler(sigma_data=0.5, sigma_min=0.002, sigma_max=80.0)
    pipe.vae.register_to_config(latents_mean=[0.0, 0.1, 0.0, -0.1], latents_std=[1.0, 0.9, 1.1, 1.0])
    return save(pipe, Path(folder))


def build_tiny_hidream(folder: Path, *, seed: int = 0) -> Path:
    """HiDream-I1: a mixture-of-experts DiT fed by CLIP-L, CLIP-G, T5 and a Llama (4th encoder)."""
    torch.manual_seed(seed)
    t5_width, llama_width, clip_projection = 32, 16, 32
    transformer = HiDreamImageTransformer2DModel(
        patch_size=2,
        in_channels=4,
        out_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        caption_channels=[t5_width, llama_width],
        text_emb_dim=2 * clip_projection,
        num_routed_experts=4,
        num_activated_experts=2,
        axes_dims_rope=(4, 2, 2),
        max_resolution=(128, 128),
        llama_layers=(0, 1),
    )
    llama = LlamaForCausalLM(
        LlamaConfig(
            hidden_size=llama_width,
            intermediate_size=32,
            num_attention_heads=2,
            num_key_value_heads=2,
            num_hidden_layers=2,
            vocab_size=256,
            max_position_embeddings=512,
            pad_token_id=0,
        )
    )
    with tempfile.TemporaryDirectory() as scratch:
        pipe = HiDreamImagePipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
            vae=vae(shift_factor=0.1159, scaling_factor=0.3611),
            # HiDream's CLIPs read 128 tokens (long-CLIP position tables), not 77.
            text_encoder=CLIPTextModelWithProjection(clip_config(32, projection=clip_projection, positions=128)),
            tokenizer=clip_tokenizer(Path(scratch), max_length=128),
            text_encoder_2=CLIPTextModelWithProjection(clip_config(32, projection=clip_projection, positions=128)),
            tokenizer_2=clip_tokenizer(Path(scratch), max_length=128),
            text_encoder_3=t5_encoder(t5_width),
            tokenizer_3=t5_tokenizer(),
            text_encoder_4=llama,
            tokenizer_4=byte_bpe_tokenizer(pad_token="<pad>", bos_token="<s>", eos_token="</s>"),
            transformer=transformer,
        )
        return save(pipe, Path(folder))


def build_tiny_zimage(folder: Path, *, seed: int = 0, layers: int = 1, heads: int = 2) -> Path:
    """Z-Image: a single-stream DiT reading the second-to-last layer of a Qwen3 encoder.
    `layers` and `heads` (of 16 dimensions each) grow it (the steering benchmark's)."""
    torch.manual_seed(seed)
    width = 16
    transformer = ZImageTransformer2DModel(
        all_patch_size=(2,),
        all_f_patch_size=(1,),
        in_channels=4,
        dim=16 * heads,
        n_layers=layers,
        n_refiner_layers=1,
        n_heads=heads,
        n_kv_heads=heads,
        norm_eps=1e-5,
        qk_norm=True,
        cap_feat_dim=width,
        rope_theta=256.0,
        t_scale=1000.0,
        axes_dims=[8, 4, 4],
        axes_lens=[256, 64, 64],
    )
    with torch.no_grad():  # these two start as torch.empty; give them values a reload reproduces
        transformer.x_pad_token.copy_(torch.ones_like(transformer.x_pad_token))
        transformer.cap_pad_token.copy_(torch.ones_like(transformer.cap_pad_token))
    pipe = ZImagePipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae(shift_factor=0.1159, scaling_factor=0.3611),
        text_encoder=Qwen3Model(qwen3_config(width, layers=2)),
        tokenizer=qwen_tokenizer(),
        transformer=transformer,
    )
    return save(pipe, Path(folder))


def flux2_transformer(text_width: int, *, guidance: bool) -> Flux2Transformer2DModel:
    """FLUX.2's DiT, small: it reads three of the text encoder's layers stacked."""
    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=3 * text_width,
        timestep_guidance_channels=256,
        axes_dims_rope=[4, 4, 4, 4],
        guidance_embeds=guidance,
    )


def flux2_vae() -> AutoencoderKLFlux2:
    return AutoencoderKLFlux2(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        use_quant_conv=False,
        use_post_quant_conv=False,
    )


def build_tiny_flux2_klein(folder: Path, *, seed: int = 0) -> Path:
    """FLUX.2 [klein]: the FLUX.2 DiT on a Qwen3 encoder whose layers 9, 18 and 27 are stacked."""
    torch.manual_seed(seed)
    width = 16  # 28 thin layers keep the real default of reading layers (9, 18, 27)
    transformer = flux2_transformer(width, guidance=False)
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=flux2_vae(),
        text_encoder=Qwen3ForCausalLM(qwen3_config(width, layers=28)),
        tokenizer=qwen_tokenizer(),
        transformer=transformer,
        is_distilled=True,
    )
    return save(pipe, Path(folder))


# The chat layout FLUX.2 [dev]'s pipeline writes its prompt in: each message's content is a list of parts.
MISTRAL_CHAT_TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}]{% for c in m['content'] %}"
    "{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endfor %}"
)


def build_tiny_flux2_dev(folder: Path, *, seed: int = 0) -> Path:
    """FLUX.2 [dev]: the FLUX.2 DiT with a guidance embedding, on a Mistral-3 vision-language
    encoder whose layers 10, 20 and 30 are stacked (31 thin layers keep the real default)."""
    torch.manual_seed(seed)
    width = 16
    text = MistralConfig(
        hidden_size=width,
        intermediate_size=2 * width,
        num_hidden_layers=31,
        num_attention_heads=2,
        num_key_value_heads=2,
        head_dim=8,
        vocab_size=512,
        max_position_embeddings=1024,
    )
    vision = PixtralVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, image_size=64, patch_size=16
    )
    tokenizer = byte_bpe_tokenizer(
        vocab_size=384, pad_token="<pad>", eos_token="</s>", bos_token="<s>", unk_token="<unk>"
    )
    tokenizer.chat_template = MISTRAL_CHAT_TEMPLATE
    transformer = flux2_transformer(width, guidance=True)
    pipe = Flux2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=flux2_vae(),
        text_encoder=Mistral3ForConditionalGeneration(
            Mistral3Config(text_config=text, vision_config=vision, image_token_index=10, spatial_merge_size=1)
        ),
        tokenizer=tokenizer,
        transformer=transformer,
    )
    return save(pipe, Path(folder))


def qwen_vl_tokenizer() -> PreTrainedTokenizerFast:
    """Qwen's tokenizer with Qwen2.5-VL's vision tokens: where a picture's patches go in a prompt."""
    tokenizer = qwen_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": ["<think>", "</think>", *QWEN_VISION_TOKENS]})
    return tokenizer


QWEN_VISION_TOKENS = ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def qwen_vl_encoder(width: int, tokenizer: PreTrainedTokenizerFast) -> Qwen2_5_VLForConditionalGeneration:
    """A Qwen2.5-VL with a one-block vision tower, its vision token ids the tokenizer's own."""
    start, end, image, video = (tokenizer.convert_tokens_to_ids(token) for token in QWEN_VISION_TOKENS)
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": width,
            "intermediate_size": 2 * width,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": 512,
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": width,
        },
        hidden_size=width,
        vocab_size=512,
        vision_start_token_id=start,
        vision_end_token_id=end,
        image_token_id=image,
        video_token_id=video,
    )
    return Qwen2_5_VLForConditionalGeneration(config).eval()


def _qwen_denoiser(
    z_dim: int, width: int, layers: int = 1, heads: int = 2
) -> tuple[QwenImageTransformer2DModel, AutoencoderKLQwenImage]:
    transformer = QwenImageTransformer2DModel(
        patch_size=2,
        in_channels=4 * z_dim,
        out_channels=z_dim,
        num_layers=layers,
        attention_head_dim=16,
        num_attention_heads=heads,
        joint_attention_dim=width,
        guidance_embeds=False,
        axes_dims_rope=(8, 4, 4),
    )
    qwen_vae = AutoencoderKLQwenImage(
        base_dim=16,
        z_dim=z_dim,
        dim_mult=[1, 2, 4, 4],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )
    return transformer, qwen_vae


def _qwen_parts(seed: int, layers: int = 1, heads: int = 2) -> dict[str, Any]:
    """Qwen-Image's modules, which its edit pipeline shares."""
    torch.manual_seed(seed)
    transformer, qwen_vae = _qwen_denoiser(z_dim=4, width=16, layers=layers, heads=heads)
    tokenizer = qwen_vl_tokenizer()
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(shift=3.0),
        "vae": qwen_vae,
        "text_encoder": qwen_vl_encoder(16, tokenizer),
        "tokenizer": tokenizer,
        "transformer": transformer,
    }


def build_tiny_qwenimage(folder: Path, *, seed: int = 0, layers: int = 1, heads: int = 2) -> Path:
    """Qwen-Image: an MMDiT conditioned on a Qwen2.5-VL encoder, with its own video-style VAE.
    `layers` and `heads` grow the transformer (the steering benchmark's)."""
    return save(QwenImagePipeline(**_qwen_parts(seed, layers, heads)), Path(folder))


def build_tiny_qwenimage_edit(folder: Path, *, seed: int = 0) -> Path:
    """Qwen-Image-Edit-Plus (2509/2511): Qwen-Image's modules, the vision-language encoder
    reading each input picture through Qwen2-VL's processor (patches of 14, merged 2x2)."""
    from diffusers import QwenImageEditPlusPipeline
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    parts = _qwen_parts(seed)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=parts["tokenizer"],
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=parts["tokenizer"].chat_template,
    )
    return save(QwenImageEditPlusPipeline(**parts, processor=processor), Path(folder))


TINY_BUILDERS: dict[str, Callable[..., Path]] = {
    "flux": build_tiny_flux,
    "fluxkontext": build_tiny_flux_kontext,
    "sd3": build_tiny_sd3,
    "sdxl": build_tiny_sdxl,
    "hidream": build_tiny_hidream,
    "zimage": build_tiny_zimage,
    "flux2": build_tiny_flux2_klein,
    "qwenimage": build_tiny_qwenimage,
    "qwenimageedit": build_tiny_qwenimage_edit,
    "chroma": build_tiny_chroma,
    "flux2dev": build_tiny_flux2_dev,
}


# --- add-ons


IP_ADAPTER_WEIGHTS = "ip-adapter.safetensors"


def _tiny_image_encoder(folder: Path) -> None:
    """A tiny CLIP vision encoder with projection (32 wide), as IP-Adapters ship theirs."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
            projection_dim=32,
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(folder / "image_encoder")


def build_tiny_flux_ip_adapter(folder: Path, transformer_folder: Path, *, seed: int = 0) -> Path:
    """An IP-Adapter for a FLUX.1 transformer in XLabs' layout (their flux-ip-adapter files):
    `ip_adapter_proj_model.*` projecting the CLIP image embedding to 4 tokens of the T5 width,
    and `double_blocks.{n}.processor.ip_adapter_double_stream_{k,v}_proj` for each double block."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    config = json.loads((transformer_folder / "config.json").read_text())
    _tiny_image_encoder(folder)
    text, inner = config["joint_attention_dim"], config["num_attention_heads"] * config["attention_head_dim"]
    weights = {
        "ip_adapter_proj_model.proj.weight": torch.randn(text * 4, 32) * 0.5,
        "ip_adapter_proj_model.proj.bias": torch.zeros(text * 4),
        "ip_adapter_proj_model.norm.weight": torch.ones(text),
        "ip_adapter_proj_model.norm.bias": torch.zeros(text),
    }
    for n in range(config["num_layers"]):
        for part in ("k", "v"):
            name = f"double_blocks.{n}.processor.ip_adapter_double_stream_{part}_proj"
            weights[f"{name}.weight"] = torch.randn(inner, text) * 0.5
            weights[f"{name}.bias"] = torch.zeros(inner)
    save_file(weights, folder / IP_ADAPTER_WEIGHTS)
    return folder


def build_tiny_ip_adapter(folder: Path, unet_folder: Path, *, seed: int = 0) -> Path:
    """An IP-Adapter for a UNet (SDXL): a tiny CLIP vision encoder with projection in
    `image_encoder/`, and `ip-adapter.safetensors` in the layout diffusers' load_ip_adapter
    reads (image_proj.* for ImageProjection, ip_adapter.{n}.to_k_ip/to_v_ip for each
    cross-attention processor, numbered 1, 3, 5... in processor order)."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    unet = UNet2DConditionModel.from_pretrained(unet_folder)
    _tiny_image_encoder(folder)
    cross, widths = unet.config.cross_attention_dim, list(unet.config.block_out_channels)
    weights = {
        "image_proj.proj.weight": torch.randn(cross * 4, 32) * 0.5,
        "image_proj.proj.bias": torch.zeros(cross * 4),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    cross_attentions = [name for name in unet.attn_processors if not name.endswith("attn1.processor")]
    for n, name in enumerate(cross_attentions):
        if name.startswith("mid_block"):
            width = widths[-1]
        elif name.startswith("up_blocks"):
            width = list(reversed(widths))[int(name[len("up_blocks.")])]
        else:
            width = widths[int(name[len("down_blocks.")])]
        weights[f"ip_adapter.{2 * n + 1}.to_k_ip.weight"] = torch.randn(width, cross) * 0.5
        weights[f"ip_adapter.{2 * n + 1}.to_v_ip.weight"] = torch.randn(width, cross) * 0.5
    save_file(weights, folder / IP_ADAPTER_WEIGHTS)
    return folder


def build_tiny_controlnet(folder: Path, base_folder: Path, family: str, *, seed: int = 0) -> Path:
    """A ControlNet for a tiny base model, made from its own denoiser as diffusers does for
    training one (SDXL: ControlNetModel.from_unet; FLUX.1: FluxControlNetModel.from_transformer
    with one double and one single block; Qwen-Image: QwenImageControlNetModel.from_transformer
    with one block; Z-Image: the union ControlNet's layout at the transformer's widths), with
    random control weights."""
    torch.manual_seed(seed)
    if family == "sdxl":
        from diffusers import ControlNetModel

        controlnet: Any = ControlNetModel.from_unet(UNet2DConditionModel.from_pretrained(base_folder / "unet"))
    elif family == "flux":
        from diffusers import FluxControlNetModel, FluxTransformer2DModel

        transformer = FluxTransformer2DModel.from_pretrained(base_folder / "transformer")
        controlnet = FluxControlNetModel.from_transformer(
            transformer,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=transformer.config.attention_head_dim,
            num_attention_heads=transformer.config.num_attention_heads,
        )
    elif family == "qwenimage":
        from diffusers import QwenImageControlNetModel, QwenImageTransformer2DModel

        qwen = QwenImageTransformer2DModel.from_pretrained(base_folder / "transformer")
        controlnet = QwenImageControlNetModel.from_transformer(
            qwen,
            num_layers=1,
            attention_head_dim=qwen.config.attention_head_dim,
            num_attention_heads=qwen.config.num_attention_heads,
        )
    elif family == "zimage":
        controlnet = _tiny_zimage_controlnet(base_folder)
    else:
        raise ValueError(f"No tiny ControlNet for {family}")
    for parameter in controlnet.parameters():  # from_unet zeroes the control outputs: give them a say
        if not parameter.abs().sum():
            parameter.data.normal_(0, 0.2)
    controlnet.save_pretrained(folder)
    return folder


def _tiny_zimage_controlnet(base_folder: Path) -> Any:
    """Z-Image's ControlNet as Alibaba's Union 2.x checkpoints lay it out (control blocks at some
    of the transformer's layers, its own refiner), at the tiny transformer's widths. It holds only
    the control weights: the pipeline lends it the transformer's embedders (from_transformer)."""
    from diffusers import ZImageControlNetModel

    config = json.loads((base_folder / "transformer" / "config.json").read_text())
    return ZImageControlNetModel(
        control_layers_places=[0],
        control_refiner_layers_places=[0],
        control_in_dim=config["in_channels"],
        add_control_noise_refiner="control_noise_refiner",
        all_patch_size=tuple(config["all_patch_size"]),
        all_f_patch_size=tuple(config["all_f_patch_size"]),
        dim=config["dim"],
        n_refiner_layers=config["n_refiner_layers"],
        n_heads=config["n_heads"],
        n_kv_heads=config["n_kv_heads"],
        norm_eps=config["norm_eps"],
        qk_norm=config["qk_norm"],
    )


def build_tiny_depth_estimator(folder: Path, *, seed: int = 0) -> Path:
    """A depth estimator laid out as Depth Anything V2 is (a DINOv2 backbone, DPT's neck and head,
    DPTImageProcessor with its multiple of 14), at tiny widths with random weights: the folder
    transformers' AutoModelForDepthEstimation reads, as the workers read the real one."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(seed)
    backbone = Dinov2Config(
        image_size=56,
        patch_size=14,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        out_indices=[1, 2, 3, 4],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
    )
    DepthAnythingForDepthEstimation(config).save_pretrained(folder)
    processor = DPTImageProcessor(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14, do_pad=False, resample=3
    )
    processor.save_pretrained(folder)
    return folder
