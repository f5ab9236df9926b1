"""What a provider is, the errors it raises, and the registry of providers plugins register.

A provider turns a payload (SinkIn field names to Python values, plus the provider's own declared
:attr:`Provider.options`; never the access token) into an :class:`InferenceResult` whose images are
URLs to download or bytes. It signals failure by raising one of these, which the worker treats
differently:

* :class:`ServiceError` – the service refused (SinkIn's ``error_code != 0``): final, shown verbatim.
* :class:`TransientError` – the request was certainly not processed (connection refused before
  sending, HTTP 429 or 5xx, a body that is not JSON): retried with backoff.
* :class:`OutcomeUnknown` – the request was sent but no answer came (read timeout, dropped
  connection): the job may have been paid for, so it is never re-sent automatically.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import httpx

from .fields import FIELDS, SPEC_ONLY_KEYS, Field
from .plugins import load_plugins, pm
from .results import InferenceResult, UpscaleResult

#: the provider of a spec that names none
DEFAULT_PROVIDER = "sinkin"
DOWNLOAD_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=30.0, pool=30.0)


class ProviderError(Exception):
    """Base class of every provider failure."""


class ServiceError(ProviderError):
    """The service answered with an error (SinkIn's ``error_code != 0``)."""

    def __init__(self, message: str, error_code: int | None = 1, response: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.response = response


class TransientError(ProviderError):
    """Nothing was processed; the call may be retried (after ``retry_after`` seconds if set)."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class OutcomeUnknown(ProviderError):
    """The request was sent and no answer came back: it may have been paid for."""


class DownloadError(ProviderError):
    """An image URL could not be fetched (after the provider's own attempt)."""


class ConfigurationError(ProviderError):
    """The provider cannot run as configured (for example no API key)."""


def http_download(
    url: str, client: httpx.Client | None = None, timeout: httpx.Timeout = DOWNLOAD_TIMEOUT
) -> bytes:
    """GET an http(s) image URL: bytes, :class:`TransientError` (timeouts, connection problems,
    429 and 5xx: retried by the worker) or :class:`DownloadError` (anything else)."""
    if not url.startswith(("http://", "https://")):
        raise DownloadError("cannot download {!r}: not an http(s) URL".format(url[:80]))
    try:
        if client is not None:
            response = client.get(url, timeout=timeout, follow_redirects=True)
        else:
            response = httpx.get(url, timeout=timeout, follow_redirects=True)
    except (httpx.TimeoutException, httpx.TransportError) as e:
        raise TransientError("download failed: {}".format(type(e).__name__))
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(
            "download failed: HTTP {}".format(response.status_code), status=response.status_code
        )
    if response.status_code != 200:
        raise DownloadError("download failed: HTTP {}".format(response.status_code))
    return response.content


class Provider:
    """Base class for providers: set :attr:`name`, implement :meth:`inference` (and optionally the
    rest). One instance may be used from several threads; providers never retry on their own."""

    #: the id users write as ``provider:`` in a spec (``register(ProviderClass)`` reads it)
    name: ClassVar[str] = ""
    #: True when calls cost nothing (estimates are then always 0)
    free: ClassVar[bool] = False
    #: extra settings this provider accepts besides SinkIn's fields: a spec may set them as
    #: top-level keys (lists expand like any field); they are checked, stored on the config
    #: (``configs.provider_options``) and passed in the payload
    options: ClassVar[Sequence[Field]] = ()
    #: the most requests a ``work`` session sends this provider at once (1 for a web UI on one
    #: GPU); None: as many as ``--concurrency``. ``--provider-concurrency NAME=N`` overrides it; an
    #: instance may set it (from its environment, say). While a provider is at its limit the other
    #: worker slots take other providers' jobs (see :mod:`sinkin_pipeline.limits`).
    max_in_flight: int | None = None

    def check_ready(self) -> None:
        """Raise :class:`ConfigurationError` when the provider cannot be used (no API key...)."""

    def inference(
        self, payload: dict[str, Any], init_image: tuple[str, bytes] | None = None
    ) -> InferenceResult:
        """Run one inference. ``init_image`` is ``(filename, bytes)`` for img2img, else None."""
        raise NotImplementedError

    def upscale(self, payload: dict[str, Any], image: tuple[str, bytes] | None = None) -> UpscaleResult:
        """Upscale one image. ``payload`` has ``inf_id``, ``url``, ``type`` and the upscaler's
        options; ``image`` is ``(filename, bytes)`` of the stored file when the upscaler asks for
        it (``Upscaler.source == "file"``)."""
        raise NotImplementedError

    def models(self) -> dict[str, list[dict[str, Any]]]:
        """Returns ``{"models": [...], "loras": [...], "video_models": [...]}``, each item a dict
        with ``id`` and ``title``; a provider with samplers or schedulers of its own may add
        ``"samplers"`` and ``"schedule_types"`` (cached by ``models.refresh_models`` too)."""
        raise NotImplementedError

    def download(self, url: str) -> bytes:
        """Fetch an image URL this provider returned; by default an http(s) GET. Raises
        :class:`TransientError` (retried) or :class:`DownloadError`."""
        return http_download(url)

    def fallback_cost_per_image(self) -> float:
        """Credits for one 512x768, 30-step, non-LCM image when no costs are recorded yet."""
        return 0.0 if self.free else 1.0

    def close(self) -> None:
        pass


ProviderFactory = Callable[[], Provider]


def get_providers() -> dict[str, ProviderFactory]:
    """``{name: factory}`` of every registered provider (a factory is usually the class)."""
    load_plugins()
    providers: dict[str, ProviderFactory] = {}

    def register(provider: Any, factory: ProviderFactory | None = None) -> None:
        if factory is not None:  # the older register(name, factory) form
            providers[provider] = factory
            return
        name = getattr(provider, "name", None)
        if not name or not isinstance(name, str):
            raise ConfigurationError(
                "register() needs a Provider class with a name, got {!r}".format(provider)
            )
        providers[name] = provider

    pm.hook.register_providers(register=register)
    return providers


def get_provider(name: str) -> Provider:
    """An instance of the provider called ``name``; ``ConfigurationError`` if it is unknown."""
    providers = get_providers()
    if name not in providers:
        raise ConfigurationError(
            "Unknown provider {!r}; available: {}".format(name, ", ".join(sorted(providers)))
        )
    return providers[name]()


def provider_options(name: str | None) -> dict[str, Field]:
    """The extra fields provider ``name`` declares (``{}`` for an unknown provider). An option that
    reuses a SinkIn field or a spec key is a plugin bug: ConfigurationError."""
    factory = get_providers().get(name or DEFAULT_PROVIDER)
    declared = getattr(factory, "options", None) or ()
    options = {}
    for option in declared:
        if option.name in FIELDS or option.name in SPEC_ONLY_KEYS:
            raise ConfigurationError(
                "provider {} declares the option {!r}, which is already a spec key".format(name, option.name)
            )
        options[option.name] = option
    return options
