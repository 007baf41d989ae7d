"""Speed profiles: how a worker makes a model fast once it has loaded it (regional compilation,
the attention backend, step caching per quality tier, LoRA hot-swap). `profile` reads and checks
an entry's `speed` option without torch; the engine's `speed.py` applies it."""
