"""The hooks a SinkIn Lab plugin can implement (entry-point group ``sinkin_pipeline``).
Each one is documented, with its signature, in docs/plugins.md (a test checks it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Iterable

    import click
    import sqlite_utils

    from .providers import ServiceError
    from .upscalers import Upscaler

hookspec = pluggy.HookspecMarker("sinkin_pipeline")
hookimpl = pluggy.HookimplMarker("sinkin_pipeline")


@hookspec
def register_providers(register: Callable[..., None]) -> None:
    """Register image providers: call ``register(ProviderClass)`` with a subclass of
    :class:`sinkin_pipeline.Provider` (its ``name`` is the provider's id). The older
    ``register(name, factory)`` form is still accepted."""


@hookspec(firstresult=True)
def expand_spec(spec: dict[str, list[Any]]) -> Iterable[dict[str, Any]] | None:
    """Expand a spec's values (each key to its list of values, seeds drawn) into config dicts:
    return an iterable (a generator is fine) or None to let the next plugin answer. The first
    plugin that returns one wins; ``sinkin plan`` and ``sinkin run`` both go through it."""


@hookspec(firstresult=True)
def handle_inference_error(
    job: dict[str, Any], config: dict[str, Any], payload: dict[str, Any], error: ServiceError
) -> dict[str, Any] | None:
    """An inference answered with an error: return a replacement payload to send instead
    (it is recorded as a fallback), or None to let the job fail."""


@hookspec
def register_upscalers(register: Callable[[Upscaler], None]) -> None:
    """Register upscalers: call ``register(upscaler)`` with a :class:`sinkin_pipeline.Upscaler`."""


@hookspec(firstresult=True)
def image_thumbnail(path: str) -> bytes | None:
    """Make the thumbnail stored with the image saved at ``path`` (JPEG bytes), or return None to
    let the next plugin answer. Called before the image's row is written and outside any database
    transaction, so this CPU work never holds the write lock. An exception is recorded in the
    ``plugin_errors`` table against the image (the next plugin is asked); it never fails the job."""


@hookspec
def image_saved(db: sqlite_utils.Database, image: dict[str, Any], path: str) -> None:
    """Called after an image file is saved at ``path`` and its ``images`` row (a dict) written.
    ``db`` is the open :class:`sqlite_utils.Database`. An exception is recorded in the
    ``plugin_errors`` table against the image; it never fails the job."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``sinkin`` click group."""
