"""The SinkIn Lab Datasette plugin, named ``sinkin`` wherever Datasette shows or takes a name
(entry point, config key, every URL under ``/-/sinkin``, its files under ``/-/sinkin/static``;
imported as ``datasette_sinkin``):
review pages, keyboard scoring, upscale comparison, the dashboard and the run form.

Each page module defines ``routes()``; they are listed here explicitly, and every view is
wrapped by :func:`appdb.guarded` (one place that turns bad input into a 4xx). This module only
wires Datasette's hooks. No page has inline scripts or inline event handlers: the
Content-Security-Policy (:mod:`.csp`) refuses them.
"""

from datasette import hookimpl

from . import appdb, batch, csvexport, dashboard, insights, review, runform, security, signin, staticfiles
from .staticfiles import static_url

#: the modules whose ``routes()`` the plugin serves
ROUTE_MODULES = (review, batch, dashboard, runform, insights, csvexport, signin, staticfiles)


@hookimpl
def register_routes(datasette):
    return [(regex, appdb.guarded(view)) for module in ROUTE_MODULES for regex, view in module.routes()]


@hookimpl
def menu_links(datasette):
    links = []
    for module in ROUTE_MODULES:
        for link in getattr(module, "MENU_LINKS", ()):
            links.append({"href": datasette.urls.path(link["href"]), "label": link["label"]})
    try:
        links.append(
            {
                "href": datasette.urls.table(appdb.database_name(datasette), "image_table"),
                "label": "Ranking table",
            }
        )
    except appdb.NoDatabase:
        pass
    return links


@hookimpl
def asgi_wrapper(datasette):
    from .tablepages import facet_dedupe

    protect, dedupe = security.protect(datasette), facet_dedupe(datasette)
    escape_csv = csvexport.escape_datasette_csv(datasette)
    return lambda app: protect(escape_csv(dedupe(app)))


@hookimpl
def skip_csrf(datasette, scope):
    # the sign-in form is the first page a browser sees: it has no CSRF cookie yet, and a stale
    # one of another app on this host must not lock it out (cross-site POSTs are refused anyway)
    return scope.get("path") == datasette.urls.path(security.LOGIN_PATH)


@hookimpl
def handle_exception(datasette, request, exception):
    return appdb.exception_response(datasette, request, exception)


@hookimpl
def prepare_connection(conn):
    conn.execute("PRAGMA busy_timeout = 30000")


@hookimpl
def table_actions(datasette, database, table, request):
    try:
        if database != appdb.database_name(datasette):
            return []
    except appdb.NoDatabase:
        return []
    query = request.scope.get("query_string", b"").decode("latin-1") if request else ""
    return [
        {
            "href": csvexport.export_url(datasette, table, query),
            "label": "Export CSV (these rows, every page, safe for spreadsheets)",
        }
    ]


@hookimpl
def render_cell(value, column, datasette):
    """The ranking table's ``thumbnail`` (the preview's URL) as a lazily loaded picture linking to
    the viewer."""
    if column == "thumbnail":
        from .tablepages import thumbnail_cell

        return thumbnail_cell(value, datasette)
    return None


@hookimpl
def extra_css_urls(datasette):
    return [static_url(datasette, "sinkin.css")]


@hookimpl
def extra_js_urls(datasette):
    """sinkin.js on every page, in the <head> (not deferred): it applies the remembered theme
    before the page paints and adds the theme toggle to Datasette's own pages."""
    return [static_url(datasette, "sinkin.js")]


@hookimpl
def extra_template_vars(datasette):
    """``sinkin_static(name)`` in templates: the URL of one of the plugin's files."""
    return {"sinkin_static": lambda name: static_url(datasette, name)}
