"""A training set's words for its captions: the staff's terminology list, the asset type's template
and the groups of words the set's report counts as one idea (training/data.py)."""

from __future__ import annotations

from ...models import TrainingSet
from ..data import OPPOSITES, SYNONYMS
from .terms import Wording, wording_for


def wording_of(training_set: TrainingSet) -> Wording:
    preset = training_set.preset
    return wording_for(
        asset=preset.name,
        template=preset.prompt_template,
        trigger=training_set.trigger_word,
        terminology=training_set.terminology,
        synonyms=SYNONYMS,
        opposites=OPPOSITES,
    )
