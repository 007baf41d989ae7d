"""Finishing: what turns a render into an asset (the brief's refiner → upscaler → post-processing).

One module per stage, each readable top to bottom:
- `plan`: what a job's finishing will do, frozen into its params at submission (web-safe);
  `planner` makes it from the registry (asset type, tier, model, upscalers).
- `validators`: palette and colour checks for the admin and forms (web-safe).
- `refine`, `upscale`, `inspect`: run on the worker's device or in a child process (torch; never
  imported by the web process).
- `palette` (correction + compliance score), `sharpen`, `transparency`, `svg`: numpy / Pillow / vtracer.
- `pipeline`: runs a plan's stages on one image and records what ran, with which settings, for how long.
"""
