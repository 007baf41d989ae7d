"""Brand training: curated, captioned sets and the LoRA runs trained on them.

Web side (no torch): `views`, `services` (runs, publishing, comparing), `data` (uploads and the
set's report) and `defaults` (the settings a run starts from). Worker side (imports torch): `lora`
(the trainer), `objectives` and `flow` (the per-family training objectives), `drift` (how far a
run's samples stray from the brand). The demo model's builders live in `generation/devtools/`.
"""
