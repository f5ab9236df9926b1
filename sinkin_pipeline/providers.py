"""What a provider is, the errors it raises, and the registry of providers plugins register.

A provider turns a SinkIn payload (a dict of SinkIn field names to Python values, never holding
the access token) into SinkIn's answer (the parsed JSON dict with ``error_code == 0``).
It signals failure by raising one of three exceptions, which the worker treats differently:

* :class:`ServiceError` – SinkIn answered ``error_code != 0``: final, the message is shown verbatim.
* :class:`TransientError` – the request was certainly not processed (connection refused before
  sending, HTTP 429 or 5xx, a body that is not JSON): retried with backoff.
* :class:`OutcomeUnknown` – the request was sent but no answer came (read timeout, dropped
  connection): the job may have been paid for, so it is never re-sent automatically.
"""
from .plugins import load_plugins, pm


class ProviderError(Exception):
    """Base class of every provider failure."""


class ServiceError(ProviderError):
    """The service answered with ``error_code != 0``."""

    def __init__(self, message, error_code=1, response=None):
        super().__init__(message)
        self.message = message
        self.error_code = error_code
        self.response = response


class TransientError(ProviderError):
    """Nothing was processed; the call may be retried (after ``retry_after`` seconds if set)."""

    def __init__(self, message, retry_after=None, status=None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class OutcomeUnknown(ProviderError):
    """The request was sent and no answer came back: it may have been paid for."""


class DownloadError(ProviderError):
    """An image URL could not be fetched (after the provider's own attempt)."""


class ConfigurationError(ProviderError):
    """The provider cannot run as configured (for example no API key)."""


class Provider:
    """Base class for providers. Subclasses set ``name`` and implement the methods."""

    name = None
    #: True when calls cost nothing (estimates are then always 0)
    free = False

    def check_ready(self):
        """Raise :class:`ConfigurationError` when the provider cannot be used (no API key...)."""

    def inference(self, payload, init_image=None):
        """Run one inference. ``init_image`` is ``(filename, bytes)`` for img2img, else None.
        Returns the success dict: ``{"error_code": 0, "images": [...], "credit_cost": .., "inf_id": ..}``."""
        raise NotImplementedError

    def upscale(self, payload):
        """Upscale: ``payload`` has ``inf_id``, ``url``, ``type`` and ``scale`` or ``strength``.
        Returns ``{"error_code": 0, "output": url, "credit_cost": ..}``."""
        raise NotImplementedError

    def models(self):
        """Returns ``{"models": [...], "loras": [...], "video_models": [...]}``."""
        raise NotImplementedError

    def download(self, url):
        """Fetch an image URL returned by this provider; returns bytes or raises
        :class:`TransientError` / :class:`DownloadError`."""
        raise NotImplementedError

    def fallback_cost_per_image(self):
        """Credits for one 512x768, 30-step, non-LCM image when no costs are recorded yet."""
        return 0.0 if self.free else 1.0

    def close(self):
        pass


def get_providers():
    """``{name: factory}`` of every registered provider."""
    load_plugins()
    providers = {}

    def register(name, factory):
        providers[name] = factory

    pm.hook.register_providers(register=register)
    return providers


def get_provider(name):
    """An instance of the provider called ``name``; ``ConfigurationError`` if it is unknown."""
    providers = get_providers()
    if name not in providers:
        raise ConfigurationError(
            "Unknown provider {!r}; available: {}".format(name, ", ".join(sorted(providers)))
        )
    return providers[name]()
