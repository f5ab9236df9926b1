"""Upscalers: an upscale type, the options it takes (declared as :class:`~sinkin_pipeline.fields.Field`)
and the providers it applies to. Plugins register them through the ``register_upscalers`` hook;
the CLI's ``--type``, the viewer's upscale dialog and every check are built from this registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .fields import Field
from .plugins import load_plugins, pm


class UpscaleError(ValueError):
    """Upscale options or an image that cannot be upscaled; nothing was written or spent."""


def _as_fields(options: Sequence[Field] | Mapping[str, Any]) -> dict[str, Field]:
    if isinstance(options, Mapping):  # the older {name: (min, max, default)} form
        fields = {}
        for name, value in options.items():
            if isinstance(value, Field):
                fields[name] = value
            else:
                low, high, default = value
                fields[name] = Field(name, "float", default=default, min=low, max=high)
        return fields
    return {f.name: f for f in options}


@dataclass
class Upscaler:
    """An upscale type.

    ``options`` are the settings it takes (Fields: kind, range, default, help). ``providers`` names
    the providers whose images it applies to; ``None`` means every provider that implements
    ``upscale()`` and registers no upscaler naming itself. ``source`` says what the provider needs:
    ``"url"`` (the image's ``inf_id`` and URL, as SinkIn does) or ``"file"`` (the stored file's
    bytes, passed as ``image=(filename, bytes)``)."""

    name: str
    options: Any = field(default_factory=dict)
    description: str = ""
    providers: Sequence[str] | None = None
    source: Literal["url", "file"] = "url"

    def __post_init__(self) -> None:
        self.options = _as_fields(self.options)

    def validate(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The API params for ``given`` options (None = default); UpscaleError when one is wrong."""
        params: dict[str, Any] = {"type": self.name}
        for key, value in given.items():
            if value is not None and key not in self.options:
                raise UpscaleError(
                    "{} does not take the option {} (it takes: {})".format(
                        self.name, key, ", ".join(self.options) or "none"
                    )
                )
        for key, fld in self.options.items():
            value = given.get(key)
            if value is None:
                value = fld.default
            if value is None:
                continue
            checked, problem = fld.check(value)
            if problem:
                if fld.kind in ("int", "float"):
                    raise UpscaleError(
                        "{} must be from {:g} to {:g} for {}, got {!r}".format(
                            key, fld.min, fld.max, self.name, value
                        )
                    )
                raise UpscaleError("{} for {}: {!r} – {}".format(key, self.name, value, problem))
            params[key] = checked
        return params

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "source": self.source,
            "options": [f.as_json() for f in self.options.values()],
        }


def get_upscalers() -> dict[str, Upscaler]:
    """Every registered upscaler by name."""
    load_plugins()
    upscalers: dict[str, Upscaler] = {}

    def register(upscaler: Upscaler) -> None:
        upscalers[upscaler.name] = upscaler

    pm.hook.register_upscalers(register=register)
    return upscalers


def _implements_upscale(factory: Any) -> bool:
    from .providers import Provider

    if isinstance(factory, type) and issubclass(factory, Provider):
        return factory.upscale is not Provider.upscale
    try:
        return callable(getattr(factory(), "upscale", None))
    except Exception:
        return False


def upscalers_for(provider_name: str) -> dict[str, Upscaler]:
    """The upscalers offered for images of ``provider_name``, in registration order."""
    from .providers import get_providers

    upscalers = get_upscalers()
    own = {n: u for n, u in upscalers.items() if u.providers is not None and provider_name in u.providers}
    if own:
        return own
    factory = get_providers().get(provider_name)
    if factory is None or not _implements_upscale(factory):
        return {}
    return {n: u for n, u in upscalers.items() if u.providers is None}
