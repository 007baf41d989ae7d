"""A training set's words, and a captioner's answer rewritten in them.

Pure Python (no Django, no torch): the set page parses and shows the staff's terminology list, the
worker asks the captioner in these words and rewrites its answer with them. The words come from:

- the staff's list for the set: a preferred term and the words it replaces (“flat icon: flat,
  minimal”), applied to every caption the captioner writes;
- the asset type's template: where it uses one word of a group that the set's report counts as one
  idea (`SYNONYMS` in training/data.py), captions say that word too; the words it contradicts
  (`OPPOSITES`) a chat captioner is told never to use (the report flags any that stay);
- the trigger word and the template's own phrases are left out of the caption: the trainer puts them
  around every caption (training/lora.py trains on “trigger, template(caption)”), so a caption that
  carried them would say them twice.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

Rules = dict[str, list[str]]  # preferred term → the words it replaces

MAX_RULES = 50
MAX_TERM = 60
MAX_WORDS = 60  # longer captions are cut by the text encoders (the run page says when)
EXAMPLE = "flat icon: flat, minimal"


class TermsError(ValueError):
    """A terminology list that cannot be used, with what to change for the designer."""


def _norm(term: str) -> str:
    """A term as it is matched: lower case, one space where it had spaces or hyphens."""
    return re.sub(r"[\s\-]+", " ", term.strip().lower())


# --- the staff's list


def parse_terms(text: str) -> Rules:
    """The staff's list from the set page, one rule a line: “preferred: word, word”."""
    rules: Rules = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        preferred, colon, rest = line.partition(":")
        words = [word.strip() for word in rest.split(",") if word.strip()]
        if not colon or not preferred.strip() or not words:
            raise TermsError(
                f"Line {number}: write the preferred term, a colon, then the words it replaces, e.g. “{EXAMPLE}”."
            )
        for term in [preferred, *words]:
            if len(term.strip()) > MAX_TERM or not re.search(r"[^\W\d_]", term):
                raise TermsError(
                    f"Line {number}: “{term.strip()[:MAX_TERM]}…” is not a term (letters, up to {MAX_TERM})."
                )
        key = " ".join(preferred.split())
        rules.setdefault(key, [])
        rules[key] += [_norm(word) for word in words if _norm(word) not in rules[key]]
    if problems := rule_problems(rules):
        raise TermsError(" ".join(problems))
    return rules


def rule_problems(rules: Rules) -> list[str]:
    """Why these rules cannot be applied together (empty: they can)."""
    if len(rules) > MAX_RULES:
        return [f"At most {MAX_RULES} preferred terms; these are {len(rules)}."]
    problems: list[str] = []
    owner: dict[str, str] = {}
    preferred = {_norm(term): term for term in rules}
    for term, words in rules.items():
        for word in words:
            if word == _norm(term):
                problems.append(f"“{term}” replaces itself: leave it out of its own list.")
            elif word in preferred:
                problems.append(
                    f"“{word}” is both a preferred term and a word to replace: the captions would flip between them."
                )
            elif word in owner and owner[word] != term:
                problems.append(f"“{word}” is replaced by both “{owner[word]}” and “{term}”: keep one.")
            owner.setdefault(word, term)
    return problems


def format_terms(rules: Rules) -> str:
    """The rules as the set page's box shows them (parse_terms reads it back)."""
    return "\n".join(f"{term}: {', '.join(words)}" for term, words in rules.items())


def stored_rules(value: object) -> Rules:
    """The set's stored list, keeping only well-formed rules (what the page saved always is)."""
    if not isinstance(value, dict):
        return {}
    rules = {
        str(term): [_norm(word) for word in words if isinstance(word, str) and word.strip()]
        for term, words in value.items()
        if isinstance(term, str) and term.strip() and isinstance(words, list)
    }
    rules = {term: words for term, words in rules.items() if words}
    return rules if not rule_problems(rules) else {}


# --- the asset type's words


def style_phrases(template: str) -> list[str]:
    """The template's phrases around {subject}: “Fluent 2 design icon”, “solid background”..."""
    around = template.replace("{subject}", ",")
    return [" ".join(part.split()) for part in re.split(r"[,;\n]", around) if part.strip()]


def _spaced(text: str) -> str:
    return " " + " ".join(re.findall(r"[a-z0-9]+", text.lower())) + " "


def _said(text: str, term: str) -> int:
    """Where `text` first says `term` as whole words (-1: nowhere)."""
    return _spaced(text).find(f" {_norm(term)} ")


def _plurals(a: str, b: str) -> bool:
    return a + "s" == b or b + "s" == a


def template_rules(template: str, synonyms: Iterable[set[str]], staff: Rules) -> Rules:
    """For each group of words for one idea that the template uses, its word replaces the others,
    unless the staff's list replaces a word of the group or prefers it: theirs is the say. A word
    inside one of their preferred terms (“icon” of “flat icon”) is never replaced."""
    replaced_by_staff = {word for words in staff.values() for word in words} | {_norm(term) for term in staff}
    inside = {word for term in staff for word in _norm(term).split()}
    rules: Rules = {}
    for group in synonyms:
        if {_norm(word) for word in group} & replaced_by_staff:
            continue
        used = sorted((_said(template, word), word) for word in group if _said(template, word) >= 0)
        if not used:
            continue
        preferred = used[0][1]
        said = {word for _, word in used}
        replaced = sorted(w for w in group if w not in said | inside and not any(_plurals(w, s) for s in said))
        if replaced:
            rules[preferred] = replaced
    return rules


def avoided(template: str, opposites: Iterable[tuple[set[str], set[str]]], keep: set[str]) -> list[str]:
    """Words that pull against the template's (it says “flat”: never “gradient”), but for `keep`."""
    found: set[str] = set()
    for one, other in opposites:
        for says, against in ((one, other), (other, one)):
            if any(_said(template, term) >= 0 for term in says):
                found |= {term for term in against if _said(template, term) < 0}
    return sorted(found - keep)


@dataclass(frozen=True)
class Wording:
    """What a caption of this set says and leaves out."""

    asset: str = "image"  # the asset type's name, for the captioner's instruction
    trigger: str = ""
    style: tuple[str, ...] = ()
    staff: Rules = field(default_factory=dict)
    derived: Rules = field(default_factory=dict)
    avoid: tuple[str, ...] = ()

    @property
    def rules(self) -> Rules:
        return {**self.derived, **self.staff}


def wording_for(
    *,
    asset: str,
    template: str,
    trigger: str,
    terminology: object,
    synonyms: Iterable[set[str]] = (),
    opposites: Iterable[tuple[set[str], set[str]]] = (),
) -> Wording:
    staff = stored_rules(terminology)
    derived = template_rules(template, synonyms, staff)
    # Words the rules handle (prefer, or rewrite) are not forbidden as well.
    keep = {word for term in [*staff, *derived] for word in [_norm(term), *_norm(term).split()]}
    keep |= {word for words in [*staff.values(), *derived.values()] for word in words}
    return Wording(
        asset=asset.strip().lower() or "image",
        trigger=trigger.strip(),
        style=tuple(style_phrases(template)),
        staff=staff,
        derived=derived,
        avoid=tuple(avoided(template, opposites, keep)),
    )


# --- asking the captioner, and its answer


def instruction(wording: Wording) -> str:
    """What a chat captioner (Qwen2.5-VL, Qwen3-VL...) is asked, beside the image."""
    lines = [
        f"Write a caption of this {wording.asset} for training an image model on it.",
        "Describe what it shows: the subject, its parts and shapes, its colours, the layout and the background, "
        "in one or two plain sentences of 15 to 40 words.",
        "Start with the subject (for example “a blue cloud with a white check mark”), not with “The image shows”.",
    ]
    if wording.style:
        lines.append(f"Leave out the style, which every caption is given anyway: {', '.join(wording.style)}.")
    if rules := wording.rules:
        said = "; ".join(f"“{term}”, never {', '.join(f'“{w}”' for w in words)}" for term, words in rules.items())
        lines.append(f"Use these words: {said}.")
    if wording.avoid:
        lines.append(f"Never use the words {', '.join(f'“{word}”' for word in wording.avoid)}.")
    lines.append("Answer with the caption only.")
    return "\n".join(lines)


_OPENINGS = [
    r"(?:here is |here's )?(?:a |the )?(?:detailed )?(?:caption|description)(?: of (?:the|this) \w+)?\s*:\s*",
    r"(?:in )?(?:the|this) (?:image|picture|photo|illustration|icon|graphic|artwork),?\s+"
    r"(?:shows|depicts|features|displays|presents|contains|is of|we see|there (?:is|are))\s+",
    r"(?:the|this) (?:image|picture|photo) is (?:of )?",
    r"this is ",
]
_OPENING = re.compile(rf"^(?:{'|'.join(_OPENINGS)})", re.IGNORECASE)
_DANGLING = {"a", "an", "the", "and", "or", "with", "of", "on", "in", "at", "to", "for", "by", "its", "their"}


def finish(answer: str, wording: Wording) -> str:
    """The captioner's answer as a caption of the set: its words, without what the trainer adds
    (the trigger word, the template's phrases), one line, at most MAX_WORDS words. "" when
    nothing usable is left."""
    text = _printable(answer)
    text = _OPENING.sub("", text.strip().strip("\"'“” "))
    text = _without_segments(text, [wording.trigger, *wording.style])  # as the captioner said them
    text = rewrite(text, wording.rules)
    text = _without_segments(text, [wording.trigger, *wording.style])  # as the rules made them
    if wording.trigger:
        text = re.sub(rf"(?<![\w-]){re.escape(wording.trigger)}(?![\w-])", " ", text, flags=re.IGNORECASE)
    text = _tidy(_destutter(text))
    return _shorten(text)


def rewrite(text: str, rules: Rules) -> str:
    """Each word a rule replaces, by its preferred term (plurals too); a preferred term found
    whole stays as it is. One pass, longest terms first: a replacement is never rewritten again."""
    table = {_norm(word): term for term, words in rules.items() for word in words}
    table |= {_norm(term): term for term in rules}
    if not table:
        return text
    alternation = "|".join(r"[\s\-]+".join(map(re.escape, key.split())) for key in sorted(table, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])({alternation})(s?)(?![\w-])", re.IGNORECASE)

    def replace(match: re.Match[str]) -> str:
        term = table[_norm(match.group(1))]
        plural = match.group(2) and not term.endswith("s")
        return term + ("s" if plural else "")

    return pattern.sub(replace, text)


def _printable(text: str) -> str:
    """One line of text: control characters, undecodable bytes and markup gone."""
    kept = [" " if unicodedata.category(ch)[0] in "CZ" or ch == "\ufffd" else ch for ch in text]
    return re.sub(r"[*_`#<>|\[\]{}]+", " ", "".join(kept))


def _without_segments(text: str, phrases: Sequence[str]) -> str:
    """Drop the comma-separated parts that are one of `phrases` (as the trainer adds them)."""
    drop = {_norm(phrase) for phrase in phrases if phrase.strip()}
    parts = re.split(r"(\s*[,;.]\s*)", text)
    kept: list[str] = []
    for index in range(0, len(parts), 2):
        if _norm(re.sub(r"[^\w\s-]", " ", parts[index])) in drop:
            continue
        kept += [parts[index], parts[index + 1] if index + 1 < len(parts) else ""]
    return "".join(kept)


def _destutter(text: str) -> str:
    """Words or runs of words said twice in a row once (a rewrite can make “flat icon icon”, a
    small captioner loops)."""
    for _ in range(10):
        before = text
        for size in (4, 3, 2, 1):
            words = r"\w+" + rf"(?:[ \-]+\w+){{{size - 1}}}"
            text = re.sub(rf"\b({words})(?:[\s,]+\1\b)+", r"\1", text, flags=re.IGNORECASE)
        text = re.sub(r"\b(\w+)\s+\1s\b", r"\1s", text, flags=re.IGNORECASE)  # “icon icons”
        if text == before:
            break
    return text


def _tidy(text: str) -> str:
    text = re.sub(r"\s+([,;.!?])", r"\1", " ".join(text.split()))
    text = re.sub(r"([,;])(?:\s*[,;])+", r"\1", text)
    text = text.strip(" ,;:-")
    if text.endswith("."):
        text = text[:-1].rstrip()
    first = text.split(" ", 1)[0]
    if first[:1].isupper() and (first[1:].islower() or len(first) == 1):  # a sentence's capital, not an acronym
        text = text[0].lower() + text[1:]
    return text


def _shorten(text: str) -> str:
    words = text.split()
    if len(words) <= MAX_WORDS:
        return text if re.search(r"[^\W\d_]", text) else ""
    kept = words[:MAX_WORDS]
    sentence = " ".join(kept)
    end = max(sentence.rfind(". "), sentence.rfind("! "), sentence.rfind("? "))
    if end > len(sentence) // 2:  # a whole sentence, when that keeps most of it
        return sentence[:end]
    while kept and kept[-1].lower().strip(",;") in _DANGLING:
        kept.pop()
    return " ".join(kept).rstrip(",;:")
