"""SinkIn Lab provider ``a1111``: AUTOMATIC1111's, Forge's or SD.Next's web UI API on your own GPU.

Start the web UI with ``--api``, then ``provider: a1111`` in a spec. Configuration (environment):

* ``SINKIN_A1111_URL`` — the web UI's address (default ``http://127.0.0.1:7860``)
* ``SINKIN_A1111_AUTH`` — ``user:password`` when the web UI was started with ``--api-auth``
  (never stored or printed)
* ``SINKIN_A1111_TIMEOUT`` — seconds to wait for one generation (default 600: local GPUs are slow)
* ``SINKIN_A1111_CONCURRENCY`` — requests sent at once (default 1: one GPU; ``sinkin work
  --provider-concurrency a1111=N`` overrides it)

Built only on what ``sinkin_pipeline`` exports (the public plugin API).
"""

from __future__ import annotations

from .provider import A1111Provider, register_providers, register_upscalers

__all__ = ["A1111Provider", "register_providers", "register_upscalers"]
