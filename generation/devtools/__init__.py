"""What builds the shipped demo weights and the tests' fixtures, not what the studio runs.

`tiny` builds tiny random-weight, architecture-true pipelines of every family (the tests, the
benchmarks, `install_tiny_model`); `glyphs` renders Fluent icons from the pinned npm package;
`demo_kit` draws the demo brand kit from them and judges drawings; `demo_model` and
`demo_controlnet` train the offline default model and its ControlNet (`build_default_model`,
`train_demo_model`, `train_demo_controlnet`); `demo_quality` scores the demo model and
`outline_experiment` trains an outline-style LoRA through the pages (scripts/*_report.py).
Worker side: it imports torch.
"""
