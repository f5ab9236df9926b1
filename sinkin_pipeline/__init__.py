"""SinkIn Lab: sweep Stable Diffusion settings on the SinkIn API and keep every image in SQLite.

The plugin API: everything a plugin needs is importable from here (see docs/plugins.md)."""

from .fields import (
    A1111_SAMPLERS,
    FIELDS,
    UPSCALE_FIELDS,
    UPSCALE_RANGES,
    UPSCALE_TYPE_OPTIONS,
    UPSCALE_TYPES,
    Field,
)
from .hookspecs import hookimpl
from .providers import (
    ConfigurationError,
    DownloadError,
    OutcomeUnknown,
    Provider,
    ProviderError,
    ServiceError,
    TransientError,
    http_download,
)
from .results import GeneratedImage, InferenceResult, UpscaleResult
from .spec import check_image_bytes
from .upscalers import UpscaleError, Upscaler

__version__ = "0.1.0"
__all__ = [
    "hookimpl",
    "Provider",
    "InferenceResult",
    "GeneratedImage",
    "UpscaleResult",
    "Upscaler",
    "Field",
    "FIELDS",
    "A1111_SAMPLERS",
    "UPSCALE_FIELDS",
    "UPSCALE_TYPE_OPTIONS",
    "UPSCALE_RANGES",
    "UPSCALE_TYPES",
    "check_image_bytes",
    "ProviderError",
    "ServiceError",
    "TransientError",
    "OutcomeUnknown",
    "DownloadError",
    "ConfigurationError",
    "UpscaleError",
    "http_download",
    "__version__",
]
