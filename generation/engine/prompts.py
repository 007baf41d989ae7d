"""How much of a prompt the text encoders read. CLIP stops at 77 tokens and T5 at the pipeline's
`max_sequence_length` (the demo model's at 32); what is past the limit is dropped without a word,
so a long asset-type template can lose its end, or a designer's last words. The worker and the
trainer tell the designer which words never reached the model.

Only tokenizers are used here (no encoder runs): counting is cheap next to a render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DROPPED_SHOWN = 120  # characters of the dropped text a note quotes


@dataclass(frozen=True)
class Reader:
    """A text encoder that reads the prompt's words, by its tokenizer and token limit."""

    name: str
    tokenizer: Any
    limit: int


def readers(family: str, pipe: Any, max_sequence_length: int | None = None) -> list[Reader]:
    """The encoders of `pipe` whose token limit can cut a prompt, for its family."""
    clip: Any = getattr(pipe, "tokenizer", None)
    if family in ("flux", "fluxkontext"):
        # FLUX.1 takes only CLIP's pooled vector (a summary); its T5 reads the words.
        return [Reader("T5", pipe.tokenizer_2, max_sequence_length or 512)]
    if family == "sd3":
        return [
            Reader("CLIP", clip, int(clip.model_max_length)),
            Reader("T5", pipe.tokenizer_3, max_sequence_length or 256),
        ]
    if family == "sdxl":
        return [Reader("CLIP", clip, int(clip.model_max_length))]
    return []  # language-model encoders (Qwen-Image, Z-Image, FLUX.2, HiDream) read far longer prompts


def cut_at(reader: Reader, text: str) -> int | None:
    """Where in `text` the reader's encoder stops reading (a character offset), or None when all
    of it fits."""
    tokenizer = reader.tokenizer
    if tokenizer is None or not text.strip():
        return None
    fast = bool(getattr(tokenizer, "is_fast", False))
    encoded = tokenizer(text, add_special_tokens=False, truncation=False, return_offsets_mapping=fast)
    content = encoded.input_ids
    specials = len(tokenizer("", add_special_tokens=True).input_ids)  # CLIP's start and end, T5's end
    kept = max(0, reader.limit - specials)
    if len(content) <= kept:
        return None
    if fast:  # exact: the offsets map tokens back to the designer's own characters
        return int(encoded.offset_mapping[kept][0])
    # A slow tokenizer: as many words of the text as the kept tokens decode to.
    words = len(tokenizer.decode(content[:kept], skip_special_tokens=True).split())
    spans = [m.end() for m in re.finditer(r"\S+", text)]
    return spans[words - 1] if 0 < words <= len(spans) else 0


def dropped_text(reader: Reader, text: str) -> str:
    """What of `text` the reader's encoder never sees ("" when all of it fits)."""
    start = cut_at(reader, text)
    return "" if start is None else _tail(text, start)


def _tail(text: str, start: int) -> str:
    """`text` from `start`, its spaces collapsed, without the separator the cut fell after."""
    return " ".join(text[start:].split()).lstrip(",;: ")


def cut_notes(text: str, encoders: list[Reader], *, typed: tuple[int, int] | None = None) -> list[str]:
    """One sentence per encoder that cuts `text`, quoting what it drops. With `typed` (where the
    designer's own description sits in `text`), only cuts that reach into it: the end of a
    template is for staff to shorten (the training run page says so), not for the designer."""
    notes = []
    for reader in encoders:
        start = cut_at(reader, text)
        if start is None or (typed is not None and start >= typed[1]):
            continue
        dropped = _tail(text, start)
        quoted = dropped if len(dropped) <= DROPPED_SHOWN else dropped[:DROPPED_SHOWN].rsplit(" ", 1)[0] + " …"
        if typed is not None:
            notes.append(
                f"Your description is cut: {reader.name} reads {reader.limit} tokens of the prompt as sent (the "
                f"asset type's template and any trigger words included), and the model never saw “{quoted}”. "
                "Put what matters first, or say it in fewer words."
            )
        else:
            notes.append(
                f"The prompt as sent (with the asset type's template and any trigger words) is longer than "
                f"the {reader.limit} tokens {reader.name} reads; the model never saw “{quoted}”."
            )
    return notes
