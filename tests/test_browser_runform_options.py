"""The run form in Chromium with a provider that declares its own options: the inputs are built
from the Fields the server passes, switching provider hides them, a list makes a grid in the live
plan, a bad value shows next to its input, and Clone fills them back. The sampler menu follows the
chosen provider's cached list."""

import re
from types import SimpleNamespace

import pytest
from test_runform_options import LocalProvider, Plugin

from sinkin_pipeline.db import open_db
from sinkin_pipeline.plugins import pm

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from conftest import serve_in_thread

    pm.register(Plugin(), name="test-local-provider-browser")
    path = tmp_path_factory.mktemp("runform-options") / "lab.db"
    open_db(path).conn.close()
    url, stop = serve_in_thread(path)
    try:
        yield SimpleNamespace(url=url, db_path=path)
    finally:
        stop()
        pm.unregister(name="test-local-provider-browser")


def plan_includes(page, text):
    page.wait_for_function(
        "(text) => document.querySelector('#sk-plan').textContent.includes(text)", arg=text, timeout=5000
    )


def test_provider_options_in_the_form(page, server):
    LocalProvider.calls = []
    page.goto(server.url + "/-/sinkin/new")
    page.select_option("#f-provider", "simulator")
    assert page.is_hidden("#sk-provider-options")
    page.select_option("#f-provider", "local")
    assert page.is_visible("#sk-provider-options")
    assert "layers to skip" in page.text_content("[data-field=clip_skip]")
    assert "1–12" in page.text_content("[data-field=clip_skip]")
    page.fill("#f-name", "options grid")
    page.fill("#f-prompt", "a lighthouse")
    page.fill("#f-model_other", "local_ckpt")
    page.check("input[name=seed_mode][value=list]")
    page.fill("#f-seed", "5")
    page.fill("#f-opt-clip_skip", "1, 2")
    page.check("input[name=opt-style][value=vivid]")
    page.select_option("#f-opt-hires", "both")
    plan_includes(page, "4 jobs, 4 images")
    yaml = page.text_content("#sk-yaml")
    assert "clip_skip: [1, 2]" in yaml and "style: vivid" in yaml and "hires: [true, false]" in yaml
    assert "clip_skip (2)" in page.text_content("#sk-basis")
    # a bad value: the problem shows next to its input, named
    page.fill("#f-opt-clip_skip", "1, 13")
    page.wait_for_function("() => document.querySelector('#err-clip_skip') !== null", timeout=5000)
    assert "clip_skip: 13" in page.text_content("#err-clip_skip")
    assert page.get_attribute("#f-opt-clip_skip", "aria-invalid") == "true"
    page.fill("#f-opt-clip_skip", "1, 2")
    plan_includes(page, "4 jobs")
    # another provider: its (no) options only; the local ones are neither shown nor sent
    page.select_option("#f-provider", "simulator")
    assert page.is_hidden("#sk-provider-options")
    page.wait_for_function("() => !document.querySelector('#sk-yaml').textContent.includes('clip_skip')")
    page.select_option("#f-provider", "local")
    assert page.input_value("#f-opt-clip_skip") == "1, 2"  # kept while away
    plan_includes(page, "4 jobs")
    page.click("#sk-create")
    page.wait_for_url(re.compile(r"/-/sinkin(\?.*)?$"))
    db = open_db(server.db_path)
    try:
        run_id, spec = db.execute("select id, spec from runs where name = 'options grid'").fetchone()
        stored = [r[0] for r in db.execute("select provider_options from configs where run_id = ?", [run_id])]
    finally:
        db.conn.close()
    assert len(stored) == 4 and all('"style": "vivid"' in s for s in stored)
    # Clone: the options are filled back in
    page.goto(server.url + "/-/sinkin/new?from={}".format(run_id))
    assert page.input_value("#f-provider") == "local"
    assert page.input_value("#f-opt-clip_skip") == "1, 2"
    assert page.is_checked("input[name=opt-style][value=vivid]")
    assert page.input_value("#f-opt-hires") == "both"
    plan_includes(page, "4 jobs")


def test_the_sampler_menu_follows_the_provider_and_its_refresh(page, server, monkeypatch):
    def menu():
        return page.eval_on_selector_all("#sk-menu-sampler_name option", "(o) => o.map((x) => x.value)")

    page.goto(server.url + "/-/sinkin/new")
    page.select_option("#f-provider", "local")
    assert menu() == ["DPM++ 2M Karras", "Euler a"]  # the cached list (filled by the run above)
    answer = LocalProvider().models()
    answer["samplers"].append({"id": "LCM", "title": "LCM"})
    monkeypatch.setattr(LocalProvider, "models", lambda self: answer)
    page.click("#sk-refresh-models")
    page.wait_for_function(
        "() => document.querySelectorAll('#sk-menu-sampler_name option').length === 3", timeout=5000
    )
    assert menu() == ["DPM++ 2M Karras", "Euler a", "LCM"]
    page.select_option("#f-provider", "simulator")
    assert page.query_selector("#sk-menu-sampler_name") is None
    # a new page load gets the refreshed list from the server
    page.goto(server.url + "/-/sinkin/new")
    page.select_option("#f-provider", "local")
    assert menu() == ["DPM++ 2M Karras", "Euler a", "LCM"]


def test_run_all_takes_a_limit_per_provider(page, server):
    from sinkin_pipeline.runs import create_run
    from sinkin_pipeline.spec import check_spec

    db = open_db(server.db_path)
    spec = {"provider": "local", "model_id": "local_ckpt", "prompt": "a fox", "seed": [1, 2, 3]}
    create_run(db, check_spec(spec))
    queued = db.execute("select count(*) from jobs where status = 'queued'").fetchone()[0]
    db.conn.close()
    page.goto(server.url + "/-/sinkin")
    page.fill("#sk-concurrency", "4")
    page.fill("#sk-provider-concurrency", "local=zero")
    page.click("#sk-run-all")
    page.wait_for_selector(".sk-toast-error")
    assert "provider concurrency 'local=zero'" in page.text_content(".sk-toast-error")
    page.fill("#sk-provider-concurrency", "local=1")
    page.click("#sk-run-all")
    page.wait_for_function("() => document.querySelector('#sk-runner-text').textContent.includes('finished')")
    status = page.evaluate("async () => (await (await fetch('/-/sinkin/status.json')).json()).runner")
    assert status["provider_concurrency"] == {"local": 1} and status["jobs"] == queued
