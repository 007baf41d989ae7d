"""Training: the studio's own trainer (worker side only; imports torch).

`flow` holds the FLUX flow-matching objective that both LoRA runs and the from-scratch demo
model use; `demo_kit` draws the demo brand kit; `demo_model` trains the offline default model.
"""
