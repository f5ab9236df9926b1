"""The plugin manager: built-in and third-party plugins load from the ``sinkin_pipeline``
entry-point group in the same way.

``SINKIN_LOAD_PLUGINS`` (like llm's ``LLM_LOAD_PLUGINS``) limits which third-party plugins load:
unset, every installed plugin loads; set to a comma-separated list of distribution names (or
entry-point names), only those load; set to an empty string, none do. The built-in plugins (the
entry points of the ``sinkin_pipeline`` distribution itself) always load."""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pluggy

from . import hookspecs

log = logging.getLogger(__name__)
pm = pluggy.PluginManager("sinkin_pipeline")
pm.add_hookspecs(hookspecs)
GROUP = "sinkin_pipeline"
BUILT_IN_DISTRIBUTION = "sinkin-pipeline"
_loaded = False
_distributions: dict[int, importlib.metadata.Distribution] = {}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _allowed() -> set[str] | None:
    value = os.environ.get("SINKIN_LOAD_PLUGINS")
    if value is None:
        return None
    return {_normal(n) for n in value.split(",") if n.strip()}


def load_plugins() -> pluggy.PluginManager:
    """Load the plugins registered under the ``sinkin_pipeline`` entry-point group (once),
    honouring ``SINKIN_LOAD_PLUGINS``."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    allowed = _allowed()
    for ep in importlib.metadata.entry_points(group=GROUP):
        dist_name = _normal(ep.dist.metadata["Name"]) if ep.dist is not None else ""
        built_in = dist_name == BUILT_IN_DISTRIBUTION
        if (
            not built_in
            and allowed is not None
            and dist_name not in allowed
            and _normal(ep.name) not in allowed
        ):
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        plugin = ep.load()
        pm.register(plugin, name=ep.name)
        if ep.dist is not None:
            _distributions[id(plugin)] = ep.dist
    return pm


def get_plugins() -> list[dict[str, Any]]:
    """A list of ``{"name", "hooks", "version"}`` for every loaded plugin, sorted by name."""
    load_plugins()
    plugins = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        info: dict[str, Any] = {"name": name, "hooks": hooks}
        dist = _distributions.get(id(plugin))
        if dist is not None:
            info["version"] = dist.version
            info["distribution"] = dist.metadata["Name"]
        plugins.append(info)
    return sorted(plugins, key=lambda p: p["name"])


def entry_point_names() -> list[str]:
    return sorted(ep.name for ep in importlib.metadata.entry_points(group=GROUP))


def call_guarded(
    hook_name: str,
    on_error: Callable[[str, Exception], None] | None = None,
    guard: Callable[[], AbstractContextManager[Any]] | None = None,
    **kwargs: Any,
) -> list[tuple[str, Exception]]:
    """Call every implementation of hook ``hook_name`` on its own (inside ``guard()`` when given),
    so one plugin's exception neither stops the others nor reaches the caller:
    ``on_error(plugin name, exception)`` is called at once, before the next plugin runs.
    Returns ``[(plugin name, exception)]``."""
    failures = []
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # pluggy's call order: last registered first
        if impl.hookwrapper or getattr(impl, "wrapper", False):
            continue
        try:
            with guard() if guard is not None else nullcontext():
                impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as e:
            log.warning("plugin %s failed in %s: %s: %s", impl.plugin_name, hook_name, type(e).__name__, e)
            failures.append((impl.plugin_name, e))
            if on_error is not None:
                on_error(impl.plugin_name, e)
    return failures
