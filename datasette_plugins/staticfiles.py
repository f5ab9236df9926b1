"""The plugin's own scripts and styles, served at ``/-/sinkin/static/<file>``: under the same
``/-/sinkin`` prefix as every other page of the plugin, so the plugin has one name in URLs (not
Datasette's ``/-/static-plugins/<distribution>/``, which would expose the distribution's name).
Only plain file names inside ``static/`` are served; anything else is a 404."""

import mimetypes
from importlib import resources

from datasette import Response
from datasette.utils.asgi import NotFound

PREFIX = "/-/sinkin/static/"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def static_url(datasette, name):
    """The URL of ``static/<name>``, under Datasette's ``base_url``."""
    return datasette.urls.path(PREFIX + name)


def routes():
    return [(r"^/-/sinkin/static/(?P<name>[A-Za-z0-9_-][A-Za-z0-9_.-]*)$", static_view)]


async def static_view(request):
    name = request.url_vars["name"]
    entry = resources.files(__package__).joinpath("static", name)
    if ".." in name or not entry.is_file():
        raise NotFound("no such file: {}".format(name))
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    content_type = TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(entry.read_bytes(), content_type=content_type, headers={"cache-control": "no-cache"})
