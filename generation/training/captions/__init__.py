"""Captions written for a training set by a captioner add-on (an image-text-to-text model).

Web side (no torch): `terms` (the set's words: the staff's terminology list, the asset type's
template, the rewrite of a captioner's answer), `addon` (which folders are captioners, checked
when an admin saves one) and `progress` (how far the latest pass got). Worker side: `captioner`
(loads the model with transformers and writes the missing captions). Services enqueue the pass
(`training/services.py`); the set page starts it, shows its progress and the review.
"""
