"""A tiny captioner built offline: Qwen2.5-VL's layout (a one-block vision tower, two text layers)
with random weights, its processor with a chat template, and the tokenizer of tiny.py (made with
`tokenizers` from a few words). The folder loads as a real Qwen2.5-VL-7B-Instruct does, through
AutoProcessor and AutoModelForImageTextToText, so the tests drive the studio's own loading code.

Random weights write nonsense; so that the nonsense is words, the output head is zero for every
token but CAPTION_WORDS (special tokens, bytes, word pieces): those score 0 while some word always
scores above, so greedy decoding says only those words, and never stops early.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
)

from .tiny import QWEN_VISION_TOKENS, byte_bpe_tokenizer

# Qwen2.5-VL's chat layout: an image in a turn is its vision tokens, which the processor widens
# to one pad per merged patch.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WIDTH = 16
# What it may say: words of tiny.py's list, each one token of the tokenizer below.
CAPTION_WORDS = """
flat minimal icon illustration blue red green orange yellow purple grey white black circle square triangle
star heart cloud background solid clean shapes centered
""".split()


def captioner_tokenizer() -> PreTrainedTokenizerFast:
    """Qwen's special and vision tokens over a byte-level BPE large enough to hold the words whole."""
    tokenizer = byte_bpe_tokenizer(
        vocab_size=512, pad_token="<|endoftext|>", eos_token="<|im_end|>", bos_token="<|im_start|>", unk_token="<|unk|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_VISION_TOKENS})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_captioner(folder: Path, *, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    tokenizer = captioner_tokenizer()
    start, end, image, video = (tokenizer.convert_tokens_to_ids(token) for token in QWEN_VISION_TOKENS)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    ids["pad_token_id"] = tokenizer.pad_token_id
    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": WIDTH,
            "intermediate_size": 2 * WIDTH,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "vocab_size": len(tokenizer),
            "rope_scaling": {"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"},
            "rope_theta": 1000000.0,
            **ids,
        },
        vision_config={
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 16,
            "num_heads": 2,
            "out_hidden_size": WIDTH,
        },
        vocab_size=len(tokenizer),
        vision_start_token_id=start,
        vision_end_token_id=end,
        image_token_id=image,
        video_token_id=video,
        **ids,
    )
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    words = [
        i
        for i in range(len(tokenizer))
        if tokenizer.decode([i]).startswith(" ") and tokenizer.decode([i])[1:] in CAPTION_WORDS
    ]
    assert len(words) == len(CAPTION_WORDS), "each word is one token"
    with torch.no_grad():
        head = model.lm_head.weight
        kept = head[words].clone()
        head.zero_()
        head[words] = kept
    folder = Path(folder)
    model.save_pretrained(folder)
    processor = Qwen2_5_VLProcessor(
        # Images of a few patches: 56 px a side at the least, 112 at the most (the real one reads ~1 MP).
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=112 * 112),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(folder)
    return folder
