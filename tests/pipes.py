"""Watching what a diffusers pipeline is called with, the call itself unchanged."""

import functools
from typing import Any


def record_argument(monkeypatch: Any, pipeline_class: Any, name: str) -> list[Any]:
    """What each call of `pipeline_class` gets as `name` (None where not given), for the rest
    of the test. The call keeps its signature: the engine reads it to choose its arguments."""
    seen: list[Any] = []
    call = pipeline_class.__call__

    @functools.wraps(call)
    def spy(pipe: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get(name))
        return call(pipe, **kwargs)

    monkeypatch.setattr(pipeline_class, "__call__", spy)
    return seen
