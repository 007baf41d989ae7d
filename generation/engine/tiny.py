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
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, T5Config, T5EncoderModel, T5TokenizerFast

# Enough vocabulary for brief-style prompts; unknown words fall back to characters.
_WORDS = """
a an the of and with on in flat icon illustration logo premium product
brand style minimal vector solid background clean geometric shapes professional ui design centered composition
high contrast blue red green orange yellow purple grey white black circle square triangle
star heart cloud clipboard check gear person computer
""".split()


def _clip_tokenizer(folder: Path) -> CLIPTokenizer:
    # A character-level BPE vocab with empty merges is a valid CLIP tokenizer (offline-models.md).
    symbols = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = {tok: i for i, tok in enumerate(symbols + [s + "</w>" for s in symbols])}
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def _t5_tokenizer() -> T5TokenizerFast:
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("\u2581" + word, -1.0) for word in _WORDS]
    pieces += [(ch, -5.0) for ch in string.ascii_lowercase + string.digits + string.punctuation + "\u2581"]
    tok = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    return T5TokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
        extra_ids=0,
        model_max_length=512,
    )


def build_tiny_flux(folder: Path, *, seed: int = 0) -> Path:
    """Write a tiny FLUX pipeline (about 1 MB) to `folder` and return it.

    The VAE downsamples by 8 like the real one, so a 512x512 image is a 64x64 latent
    (32x32 tokens after FLUX's 2x2 packing) and a CPU renders it in a fraction of a second.
    """
    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width = 32
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=width,
        pooled_projection_dim=width,
        axes_dims_rope=[4, 4, 8],
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 8, 16, 16),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    clip = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=width,
            intermediate_size=64,
            num_attention_heads=2,
            num_hidden_layers=1,
            vocab_size=256,
            max_position_embeddings=77,
            projection_dim=width,
        )
    )
    t5 = T5EncoderModel(
        T5Config(
            d_model=width,
            d_ff=64,
            d_kv=16,
            num_heads=2,
            num_layers=1,
            vocab_size=256,
            decoder_start_token_id=0,
        )
    )
    with tempfile.TemporaryDirectory() as scratch:
        pipe = FluxPipeline(
            scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=False),
            vae=vae,
            text_encoder=clip,
            tokenizer=_clip_tokenizer(Path(scratch)),
            text_encoder_2=t5,
            tokenizer_2=_t5_tokenizer(),
            transformer=transformer,
        )
        pipe.save_pretrained(folder)
    return folder
