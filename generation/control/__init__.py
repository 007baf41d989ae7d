"""Steering a job with an image: a designer's sketch or layout, which the model starts from.

- `inputs`: uploads and studio images stored as the owner's private InputImage, once per content;
- `sketch`: what a sketch asks of a job (how closely to follow it) and which models can take one.

No torch here: the web process imports this; the worker starts from the stored file (generation/worker/request.py).
"""
