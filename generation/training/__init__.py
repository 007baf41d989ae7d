"""Training: the studio's own trainer (worker side only; imports torch).

`flow` holds the FLUX flow-matching objective that both LoRA runs and the from-scratch demo
model use; `glyphs` renders Fluent icons from the pinned npm package; `demo_kit` draws the demo
brand kit from them and judges drawings; `demo_model` trains the offline default model and
`demo_quality` scores it; `outline_experiment` trains an outline-style LoRA through the pages.
"""
