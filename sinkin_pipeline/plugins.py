"""The plugin manager: built-in and third-party plugins load from the ``sinkin_pipeline``
entry-point group in the same way."""
import importlib.metadata

import pluggy

from . import hookspecs

pm = pluggy.PluginManager("sinkin_pipeline")
pm.add_hookspecs(hookspecs)
_loaded = False


def load_plugins():
    """Load every plugin registered under the ``sinkin_pipeline`` entry-point group (once)."""
    global _loaded
    if not _loaded:
        _loaded = True
        pm.load_setuptools_entrypoints("sinkin_pipeline")
    return pm


def get_plugins():
    """A list of ``{"name", "hooks", "version"}`` for every loaded plugin, sorted by name."""
    load_plugins()
    plugins = []
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin)
        hooks = sorted(h.name for h in (pm.get_hookcallers(plugin) or []))
        info = {"name": name, "hooks": hooks}
        dist = dists.get(id(plugin))
        if dist is not None:
            info["version"] = dist.version
            info["distribution"] = dist.project_name if hasattr(dist, "project_name") else dist.metadata["Name"]
        plugins.append(info)
    return sorted(plugins, key=lambda p: p["name"])


def entry_point_names():
    return sorted(ep.name for ep in importlib.metadata.entry_points(group="sinkin_pipeline"))
