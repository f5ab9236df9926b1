"""The plugin's scripts and styles are served under its one name, /-/sinkin/static/, and nothing
outside its static folder is."""

import pytest


@pytest.mark.asyncio
async def test_pages_load_their_files_from_sinkin_static(lab):
    page = await lab.ds.client.get("/-/sinkin")
    assert page.status_code == 200
    assert 'src="/-/sinkin/static/dashboard.js"' in page.text
    assert "/-/sinkin/static/sinkin.css" in page.text and "static-plugins" not in page.text
    js = await lab.ds.client.get("/-/sinkin/static/dashboard.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    css = await lab.ds.client.get("/-/sinkin/static/sinkin.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "/-/sinkin/static/nothing.js",
        "/-/sinkin/static/..%2f__init__.py",
        "/-/sinkin/static/../__init__.py",
        "/-/sinkin/static/%2e%2e/app.py",
        "/-/sinkin/static/.hidden",
        "/-/sinkin/static/",
    ],
)
async def test_nothing_else_is_served(lab, path):
    r = await lab.ds.client.get(path)
    if r.status_code == 302:  # Datasette's own redirect of %-escapes to its ~ escapes
        r = await lab.ds.client.get(r.headers["location"])
    assert r.status_code == 404, (path, r.status_code)
    assert "hookimpl" not in r.text
