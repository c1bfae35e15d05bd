"""Event hooks (httpx's `event_hooks=`): async callables run for every request that goes to a
transport and for every response that comes back.

The send pipeline calls them at the one point where a single request meets its transport
(`_send.py`), so they see every attempt: each redirect hop, each auth round, and anything
else that sends through that point. A response hook that raises gets its response closed
by the pipeline, and its exception goes on unchanged.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ._config import describe

__all__ = ["EventHook", "EventHooks", "build_event_hooks", "run_hooks"]

EventHook = Callable[[Any], Awaitable[Any]]
EventHooks = dict[str, list[EventHook]]

_KINDS = ("request", "response")


def build_event_hooks(value: Mapping[str, list[EventHook]] | None) -> EventHooks:
    """`{"request": [...], "response": [...]}` with fresh lists (missing kinds empty).

    An unknown kind is refused: a typo such as "responses" would otherwise silently never
    run. Hooks must be callable; that they are async is checked when each is called.
    """
    if value is None:
        return {"request": [], "response": []}
    if not isinstance(value, Mapping):
        raise TypeError(
            'event_hooks must be a mapping such as {"request": [...], "response": [...]}, '
            f"not {describe(value)}"
        )
    unknown = [kind for kind in value if kind not in _KINDS]
    if unknown:
        raise ValueError(
            f'event_hooks keys must be "request" and/or "response", not {unknown[0]!r}'
        )
    hooks: EventHooks = {}
    for kind in _KINDS:
        given = value.get(kind, [])
        if callable(given) or not isinstance(given, (list, tuple)):
            raise TypeError(
                f'event_hooks["{kind}"] must be a list of async callables, not {describe(given)}'
            )
        for hook in given:
            if not callable(hook):
                raise TypeError(
                    f'event_hooks["{kind}"] must hold async callables, not {describe(hook)}'
                )
        hooks[kind] = list(given)
    return hooks


async def run_hooks(hooks: list[EventHook], argument: object) -> None:
    """Await each hook with `argument`, in order (a copy of the list: a hook may edit it)."""
    for hook in tuple(hooks):
        result = hook(argument)
        if not inspect.isawaitable(result):
            raise TypeError(
                f"event hook {hook!r} must be an async function (it returned "
                f"{describe(result)}, not an awaitable)"
            )
        await result
