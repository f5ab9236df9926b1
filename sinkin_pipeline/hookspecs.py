"""The hooks a SinkIn Lab plugin can implement (entry-point group ``sinkin_pipeline``)."""
import pluggy

hookspec = pluggy.HookspecMarker("sinkin_pipeline")
hookimpl = pluggy.HookimplMarker("sinkin_pipeline")


@hookspec
def register_providers(register):
    """Register image providers: call ``register(name, factory)`` where ``factory()`` returns a
    :class:`sinkin_pipeline.providers.Provider`."""


@hookspec(firstresult=True)
def expand_spec(spec):
    """Expand a validated spec (a dict whose values may be lists) into a list of config dicts.
    The first plugin that returns a list wins."""


@hookspec(firstresult=True)
def handle_inference_error(job, config, payload, error):
    """An inference answered with an error: return a replacement payload to send instead
    (it is recorded as a fallback), or None to let the job fail."""


@hookspec
def register_upscalers(register):
    """Register upscalers: call ``register(upscaler)`` with a
    :class:`sinkin_pipeline.upscaling.Upscaler`."""


@hookspec
def image_saved(db, image, path):
    """Called after an image file is saved at ``path`` and its ``images`` row (a dict) written.
    ``db`` is the open :class:`sqlite_utils.Database`."""


@hookspec
def register_commands(cli):
    """Add commands to the ``sinkin`` click group."""
