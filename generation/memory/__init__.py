"""Memory plans: how a model's components are kept on a card of N GB (which are quantized, how,
and which leave the GPU after use), worked out from the model's configs and safetensors headers
alone, without reading weights or importing torch (the web side shows plans in the admin).

`cards` names the cards a team has, `components` sizes a model's parts, `plan` picks the fastest
arrangement that fits. What the studio knows of the published full-size models lives in
`published/` (their configs), which `scripts/memory_plan.py` builds on the meta device.
"""
