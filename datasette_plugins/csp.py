"""The security headers every response of the app carries (Datasette's own pages included).

* ``Content-Security-Policy``: scripts only from this origin, plus the few inline scripts of
  Datasette 0.65's own templates, allowed by their SHA-256 hash (computed from the installed
  templates at start, so an upgrade that changes them is picked up). The SinkIn pages have **no
  inline scripts and no inline event handlers** (``onclick=``, ``onsubmit=``…): put code in
  ``static/*.js``; data for a page goes in ``<script type="application/json">``, which is not run.
  Styles may be inline (Datasette's table page writes per-column CSS), images may be ``data:``
  (datasette-render-images inlines thumbnails) or ``blob:`` (upload previews).
* ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``: no page can be framed (clickjacking).
* ``X-Content-Type-Options: nosniff``, ``Cross-Origin-Resource-Policy: same-origin`` (another
  site cannot even embed an image), ``Referrer-Policy: same-origin``.
"""

import base64
import functools
import hashlib
import re
from importlib import resources

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
#: values a template variable inside one of Datasette's inline scripts can take
_TEMPLATE_VALUES = {"datasette_allow_facet": ("true", "false")}


def _sha256(text):
    return "'sha256-{}'".format(base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode())


def _variants(script):
    """The texts an inline script of a template renders to (one, or one per variable value)."""
    texts = [script]
    for name, values in _TEMPLATE_VALUES.items():
        pattern = re.compile(r"\{\{\s*" + name + r"\s*\}\}")
        if pattern.search(script):
            texts = [pattern.sub(value, t) for t in texts for value in values]
    return [t for t in texts if "{{" not in t and "{%" not in t]


@functools.lru_cache(maxsize=1)
def datasette_script_hashes():
    """The hashes of the inline scripts in Datasette's installed templates."""
    hashes = set()
    for template in resources.files("datasette").joinpath("templates").iterdir():
        if not template.name.endswith(".html"):
            continue
        for script in _INLINE_SCRIPT.findall(template.read_text(encoding="utf-8")):
            hashes.update(_sha256(text) for text in _variants(script))
    return tuple(sorted(hashes))


@functools.lru_cache(maxsize=1)
def content_security_policy():
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' " + " ".join(datasette_script_hashes()),
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers():
    """``[(name, value)]`` (bytes) added to every response that does not set them itself."""
    return [
        (b"content-security-policy", content_security_policy().encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"cross-origin-resource-policy", b"same-origin"),
        (b"referrer-policy", b"same-origin"),
    ]
