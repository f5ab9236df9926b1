"""The SinkIn Lab Datasette plugin (installed as ``datasette_sinkin``): review pages, keyboard
scoring, upscale comparison, the dashboard and the run form. Each page's routes live in their
own module; this module only wires Datasette's hooks."""
import re

from datasette import hookimpl

from . import security

#: modules that define ``routes()`` -> [(regex, view)], ``menu_links`` items and assets
PAGE_MODULES = ("review", "dashboard", "insights")


def _page_modules():
    import importlib

    modules = []
    for name in PAGE_MODULES:
        try:
            modules.append(importlib.import_module("{}.{}".format(__name__, name)))
        except ModuleNotFoundError as e:
            if e.name != "{}.{}".format(__name__, name):
                raise
    return modules


@hookimpl
def register_routes(datasette):
    routes = []
    for module in _page_modules():
        routes.extend(module.routes())
    return routes


@hookimpl
def menu_links(datasette):
    links = []
    for module in _page_modules():
        for link in getattr(module, "MENU_LINKS", ()):
            links.append({"href": datasette.urls.path(link["href"]), "label": link["label"]})
    from .appdb import NoDatabase, database_name

    try:
        links.append({"href": datasette.urls.table(database_name(datasette), "image_table"),
                      "label": "Ranking table"})
    except NoDatabase:
        pass
    return links


@hookimpl
def asgi_wrapper(datasette):
    return security.host_guard(datasette)


@hookimpl
def prepare_connection(conn):
    conn.execute("PRAGMA busy_timeout = 30000")


@hookimpl
def table_actions(datasette, database, table):
    if table != "image_table":
        return []
    href = datasette.urls.table(database, "image_table", format="csv") + "?_stream=on&_dl=1&_nocol=thumbnail"
    return [{"href": href, "label": "Export CSV (every row, streamed)"}]


THUMB_URL = re.compile(r"^/-/sinkin/images/\d+/thumb$")


@hookimpl
def render_cell(value, column):
    """The ranking table's ``thumbnail`` (the preview's URL) as a lazily loaded picture."""
    if column == "thumbnail" and isinstance(value, str) and THUMB_URL.match(value):
        from markupsafe import Markup, escape

        return Markup('<img class="sk-cell-thumb" src="{0}" alt="preview" loading="lazy" width="96">'
                      .format(escape(value)))
    return None


@hookimpl
def extra_css_urls(datasette):
    return [datasette.urls.static_plugins("sinkin_pipeline", "sinkin.css")]


@hookimpl
def extra_js_urls(datasette):
    """sinkin.js on every page, in the <head> (not deferred): it applies the remembered theme
    before the page paints and adds the theme toggle to Datasette's own pages."""
    return [datasette.urls.static_plugins("sinkin_pipeline", "sinkin.js")]
