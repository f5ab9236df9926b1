"""SinkIn Lab: sweep Stable Diffusion settings on the SinkIn API and keep every image in SQLite."""
from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
