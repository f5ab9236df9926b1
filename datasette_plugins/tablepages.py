"""Datasette's own table pages, made easier to use: a facet asked for in the URL (``&_facet=scale``)
that the table's metadata already shows is not shown a second time, and the ranking table's rows
(thumbnail, image id) lead to the viewer."""

import re
from urllib.parse import parse_qsl, urlencode

from markupsafe import Markup, escape

THUMB_URL = re.compile(r"^/-/sinkin/images/(\d+)/thumb$")


def unique_facets(datasette, path, query_string):
    """``query_string`` without the ``_facet=X`` pairs that repeat a facet of the table's metadata
    or an earlier ``_facet=X``; unchanged (the same bytes) when nothing repeats."""
    from datasette.utils import tilde_decode

    parts = path.strip("/").split("/")
    if len(parts) != 2:
        return query_string
    database = tilde_decode(parts[0].split(".")[0])
    table = tilde_decode(re.sub(r"\.(json|csv)$", "", parts[1]))
    try:
        facets = (datasette.table_metadata(database, table) or {}).get("facets") or []
    except Exception:  # an unknown database or table: Datasette answers it
        return query_string
    seen = {f for f in facets if isinstance(f, str)}
    pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    kept = []
    for key, value in pairs:
        if key == "_facet":
            if value in seen:
                continue
            seen.add(value)
        kept.append((key, value))
    if len(kept) == len(pairs):
        return query_string
    return urlencode(kept).encode("latin-1")


def facet_dedupe(datasette):
    """ASGI middleware applying :func:`unique_facets` to GET requests that name a facet."""

    def wrap(app):
        async def deduped(scope, receive, send):
            if scope["type"] == "http" and b"_facet=" in scope.get("query_string", b""):
                query = unique_facets(datasette, scope["path"], scope["query_string"])
                if query is not scope["query_string"]:
                    scope = dict(scope, query_string=query)
            await app(scope, receive, send)

        return deduped

    return wrap


def thumbnail_cell(value, datasette=None):
    """The ranking table's ``thumbnail`` (the preview's URL, stored without Datasette's base_url): a
    lazily loaded picture that opens the image in the viewer, both under the base_url. None for any
    other value."""
    path = datasette.urls.path if datasette is not None else (lambda p: p)
    match = THUMB_URL.match(value) if isinstance(value, str) else None
    if not match:
        return None
    return Markup(
        '<a class="sk-cell-view" href="{2}" title="Open image {0} in the viewer">'
        '<img class="sk-cell-thumb" src="{1}" alt="image {0}" loading="lazy" width="96"></a>'.format(
            match.group(1), escape(path(value)), escape(path("/-/sinkin/images/" + match.group(1)))
        )
    )
