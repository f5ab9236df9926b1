"""The dashboard and the run form in Debian's Chromium (Playwright, sync API): design a 2×2×2 grid
on the simulator, create it, run one job, run the rest, see the gallery fill; a double-submitted
form creates one run; a large grid asks for confirmation; a failed job can be retried.
Screenshots (light and dark) go to $SINKIN_SCREENSHOTS, or a temporary folder."""

import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from sinkin_pipeline.db import open_db

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The plugin served on 127.0.0.1 for this module, on a fresh database."""
    from conftest import serve_in_thread

    path = tmp_path_factory.mktemp("dashboard") / "lab.db"
    open_db(path).conn.close()
    url, stop = serve_in_thread(path)
    yield SimpleNamespace(url=url, db_path=path)
    stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("SINKIN_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def query(server, sql, params=()):
    db = open_db(server.db_path)
    try:
        return db.execute(sql, list(params)).fetchall()
    finally:
        db.conn.close()


def fill_grid(page, server, name):
    """A 2 prompts × 2 schedulers × 2 CFG scales grid on the simulator."""
    page.goto(server.url + "/-/sinkin/new")
    page.select_option("#f-provider", "simulator")
    page.fill("#f-name", name)
    page.fill("#f-prompt", "a lighthouse on a cliff at dusk\na red fox in fresh snow")
    page.fill("#f-model_other", "4zdwGOB")
    page.uncheck("input[name=scheduler][value=DPMSolverMultistep]")
    page.check("input[name=scheduler][value=DDIM]")
    page.check("input[name=scheduler][value=K_EULER]")
    page.fill("#f-scale", "5, 9")
    page.fill("#f-steps", "12")
    page.fill("#f-width", "256")
    page.fill("#f-height", "256")
    page.check("input[name=seed_mode][value=list]")
    page.fill("#f-seed", "1234")
    page.wait_for_function(
        "() => document.querySelector('#sk-plan').textContent.includes('8 jobs, 8 images, ~0 credits')"
    )


def run_id_by_name(server, name):
    return query(server, "select id from runs where name = ?", [name])[0][0]


def test_grid_from_the_form_to_a_full_gallery(page, server, shots):
    fill_grid(page, server, "browser grid")
    assert "scheduler: [DDIM, K_EULER]" in page.text_content("#sk-yaml")
    page.screenshot(path=str(shots / "form-light.png"), full_page=True)
    page.click("#sk-create")
    page.wait_for_url(re.compile(r"/-/sinkin(\?.*)?$"))
    run_id = run_id_by_name(server, "browser grid")
    assert (
        query(server, "select count(*) from jobs where run_id = ? and status = 'queued'", [run_id])[0][0] == 8
    )
    row = page.locator("#sk-runs tr[data-run-id='{}']".format(run_id))
    assert row.locator(".sk-queued").text_content() == "8"
    assert page.locator("#sk-upcoming tr").count() == 8

    page.select_option("#sk-scope", str(run_id))
    page.click("#sk-run-next")
    row.locator("text=1 / 8 jobs done").wait_for()
    assert row.locator(".sk-total").text_content() == "1"
    assert page.locator("#sk-upcoming tr").count() == 7
    assert query(server, "select count(*) from images where run_id = ?", [run_id])[0][0] == 1

    page.fill("#sk-concurrency", "2")
    page.click("#sk-run-all")
    page.wait_for_function("() => document.querySelector('#sk-runner-text').textContent.includes('finished')")
    row.locator("text=8 / 8 jobs done").wait_for()
    assert row.locator(".sk-total").text_content() == "8"
    assert "7 jobs done" in page.text_content("#sk-runner-text")
    page.screenshot(path=str(shots / "dashboard-light.png"), full_page=True)
    assert query(server, "select count(*) from images where run_id = ?", [run_id])[0][0] == 8

    page.click("#sk-runs tr[data-run-id='{}'] >> text=Gallery".format(run_id))
    page.wait_for_url("**/-/sinkin/runs/{}*".format(run_id))
    page.locator("#sk-grid li img").nth(7).wait_for()
    assert page.locator("#sk-grid li").count() == 8
    # every thumbnail actually loaded (not a broken image)
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#sk-grid img'))"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    page.screenshot(path=str(shots / "gallery-after-run-all.png"))


def test_double_submit_creates_one_run(page, server):
    fill_grid(page, server, "double click")
    before = query(server, "select count(*) from runs")[0][0]
    # two clicks before the first answer arrives, then a third after it (e.g. a slow double click)
    page.evaluate("() => { const b = document.querySelector('#sk-create'); b.click(); b.click(); }")
    page.wait_for_url(re.compile(r"/-/sinkin(\?.*)?$"))
    assert query(server, "select count(*) from runs")[0][0] == before + 1
    assert query(server, "select count(*) from runs where name = 'double click'")[0][0] == 1


def test_a_large_grid_asks_before_queueing(page, server):
    from sinkin_pipeline.runs import CONFIRM_JOBS

    fill_grid(page, server, "large grid")
    page.fill("#f-prompt", "one prompt")
    page.uncheck("input[name=scheduler][value=K_EULER]")
    page.fill("#f-scale", "7")
    page.check("input[name=seed_mode][value=random]")
    page.fill("#f-random_seeds", str(CONFIRM_JOBS + 1))
    page.wait_for_function(
        "() => document.querySelector('#sk-plan').textContent.includes('{} jobs')".format(CONFIRM_JOBS + 1)
    )
    page.click("#sk-create")
    page.locator("#sk-confirm").wait_for(state="visible")
    assert "{} jobs".format(CONFIRM_JOBS + 1) in page.text_content("#sk-confirm-text")
    assert query(server, "select count(*) from runs where name = 'large grid'")[0][0] == 0
    page.click("#sk-confirm-yes")
    page.wait_for_url(re.compile(r"/-/sinkin(\?.*)?$"))
    run_id = run_id_by_name(server, "large grid")
    assert query(server, "select count(*) from jobs where run_id = ?", [run_id])[0][0] == CONFIRM_JOBS + 1
    # leave the queue as it was for the other tests
    db = open_db(server.db_path)
    with db.conn:
        db.execute("update jobs set status = 'cancelled' where run_id = ?", [run_id])
    db.conn.close()


def test_problems_show_next_to_their_fields(page, server):
    page.goto(server.url + "/-/sinkin/new")
    page.fill("#f-prompt", "a cat")
    page.fill("#f-steps", "0")
    page.locator("[data-field=steps] .sk-field-error").wait_for()
    assert "out of range" in page.text_content("[data-field=steps] .sk-field-error")
    assert page.get_attribute("#f-steps", "aria-invalid") == "true"
    page.fill("#f-steps", "20")
    page.locator("[data-field=steps] .sk-field-error").wait_for(state="detached")


def test_a_failed_job_shows_its_message_and_can_be_retried(page, server, shots, browser):
    fill_grid(page, server, "with a failure")
    page.click("#sk-create")
    page.wait_for_url(re.compile(r"/-/sinkin(\?.*)?$"))
    run_id = run_id_by_name(server, "with a failure")
    job_id = query(server, "select min(id) from jobs where run_id = ?", [run_id])[0][0]
    db = open_db(server.db_path)
    with db.conn:
        db.execute(
            "update jobs set status = 'failed', error = 'Prompt rejected by the safety filter', "
            "finished_at = '2020-01-01T00:00:00' where id = ?",
            [job_id],
        )
    db.conn.close()
    problem = page.locator("#sk-problems tr[data-job-id='{}']".format(job_id))
    problem.wait_for()
    assert "Prompt rejected by the safety filter" in problem.text_content()
    dark = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    dark_page = dark.new_page()
    dark_page.goto(server.url + "/-/sinkin")
    dark_page.locator("#sk-problems tr").first.wait_for()
    dark_page.screenshot(path=str(shots / "dashboard-dark.png"), full_page=True)
    dark_page.goto(server.url + "/-/sinkin/new?from={}".format(run_id))
    dark_page.wait_for_function("() => document.querySelector('#sk-plan').textContent.includes('8 jobs')")
    dark_page.screenshot(path=str(shots / "form-dark.png"), full_page=True)
    dark.close()
    problem.locator("text=Retry").click()
    problem.wait_for(state="detached")
    assert query(server, "select status from jobs where id = ?", [job_id])[0][0] == "queued"
    db = open_db(server.db_path)
    with db.conn:
        db.execute("update jobs set status = 'cancelled' where run_id = ?", [run_id])
    db.conn.close()


def test_an_uploaded_init_image_is_shown_and_enters_the_spec(page, server, tmp_path):
    import io

    from PIL import Image

    picture = tmp_path / "start.png"
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), (30, 120, 200)).save(buffer, "PNG")
    picture.write_bytes(buffer.getvalue())
    fill_grid(page, server, "img2img")
    assert page.is_disabled("#f-image_strength")
    page.set_input_files("#f-init-file", str(picture))
    page.locator("#sk-assets li").wait_for()
    assert "start.png · 96×64" in page.text_content("#sk-assets")
    # the preview loads (waited for: a loaded machine may take a moment)
    page.wait_for_function("() => document.querySelector('#sk-assets img').naturalWidth === 96")
    assert page.is_enabled("#f-image_strength")
    page.fill("#f-image_strength", "0.3")
    page.check("input[name=controlnet][value=canny]")
    page.wait_for_function(
        "() => document.querySelector('#sk-yaml').textContent.includes('controlnet: canny')"
    )
    assert "image_strength: 0.3" in page.text_content("#sk-yaml")
    assert "init_image:" in page.text_content("#sk-yaml")
    # a file that is not an image is refused next to the field, and nothing is stored
    fake = tmp_path / "notes.png"
    fake.write_bytes(b"this is not a picture")
    page.set_input_files("#f-init-file", str(fake))
    page.locator("[data-field=init_image] .sk-field-error").wait_for()
    assert "not an image" in page.text_content("[data-field=init_image] .sk-field-error")
    assert query(server, "select count(*) from assets")[0][0] == 1


def test_queue_control_cancel_a_job_a_run_the_queue_move_to_front_and_pause(page, server, shots, monkeypatch):
    from conftest import queue_run

    from sinkin_plugins.simulator import SimulatorProvider

    spec = {
        "provider": "simulator",
        "model_id": "4zdwGOB",
        "prompt": "a boat",
        "steps": 5,
        "width": 128,
        "height": 128,
        "seed": [1, 2, 3],
    }
    db = open_db(server.db_path)
    with db.conn:  # other tests' leftovers
        db.execute("update jobs set status = 'cancelled' where status = 'queued'")
    db.conn.close()
    first = queue_run(server.db_path, dict(spec, name="queue first"))
    second = queue_run(server.db_path, dict(spec, name="queue second"))
    page.goto(server.url + "/-/sinkin")
    runs = "#sk-runs tr[data-run-id='{}']"
    page.locator(runs.format(second) + " .sk-front").wait_for()
    assert page.locator("#sk-upcoming tr").first.get_attribute("data-job-id") == str(
        query(server, "select min(id) from jobs where run_id = ?", [first])[0][0]
    )
    # "To the front" by keyboard: the second run's jobs come first, and the button keeps the focus
    page.focus(runs.format(second) + " .sk-front")
    page.keyboard.press("Enter")
    second_jobs = [r[0] for r in query(server, "select id from jobs where run_id = ? order by id", [second])]
    page.wait_for_function(
        "() => document.querySelector('#sk-upcoming tr').dataset.jobId === '{}'".format(second_jobs[0])
    )
    page.wait_for_timeout(1300)  # a poll re-renders the tables
    assert page.evaluate("document.activeElement.dataset.focus") == "front-run-{}".format(second)
    page.screenshot(path=str(shots / "dashboard-queue-control.png"), full_page=True)
    # Cancel one upcoming job
    page.click("#sk-upcoming tr[data-job-id='{}'] .sk-cancel".format(second_jobs[1]))
    page.locator("#sk-upcoming tr[data-job-id='{}']".format(second_jobs[1])).wait_for(state="detached")
    assert query(server, "select status from jobs where id = ?", [second_jobs[1]])[0][0] == "cancelled"
    # Cancel a run's queued jobs (after a confirmation)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(runs.format(second) + " .sk-cancel")
    page.locator(runs.format(second) + " .sk-cancel").wait_for(state="detached")
    assert query(server, "select status, count(*) from jobs where run_id = ? group by status", [second]) == [
        ("cancelled", 3)
    ]
    # Pause "Run all": the job in flight finishes, nothing more is claimed; Resume finishes the rest
    real = SimulatorProvider.inference
    monkeypatch.setattr(
        SimulatorProvider, "inference", lambda self, *a, **k: (time.sleep(0.8), real(self, *a, **k))[1]
    )
    page.click("#sk-run-all")
    page.locator("#sk-stop").wait_for(state="visible")
    page.click("#sk-stop")
    page.locator("#sk-resume").wait_for(state="visible")
    assert "paused" in page.text_content("#sk-runner-text")
    done = query(server, "select count(*) from jobs where run_id = ? and status = 'succeeded'", [first])[0][0]
    assert 1 <= done < 3
    assert query(server, "select count(*) from jobs where status = 'queued'")[0][0] == 3 - done
    monkeypatch.setattr(SimulatorProvider, "inference", real)
    page.click("#sk-resume")
    page.wait_for_function("() => document.querySelector('#sk-runner-text').textContent.includes('finished')")
    assert (
        query(server, "select count(*) from jobs where run_id = ? and status = 'succeeded'", [first])[0][0]
        == 3
    )
    # Cancel queued jobs: the whole queue (after a confirmation)
    third = queue_run(server.db_path, dict(spec, name="queue third"))
    page.locator(runs.format(third)).wait_for()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#sk-cancel-queue")
    page.wait_for_function(
        "() => document.querySelector('#sk-upcoming-note').textContent === 'The queue is empty.'"
    )
    assert query(server, "select count(*) from jobs where status = 'queued'")[0][0] == 0


def test_paid_provider_without_a_key_and_an_unknown_model_id(page, server, shots, monkeypatch):
    monkeypatch.delenv("SINKIN_API_KEY", raising=False)
    page.goto(server.url + "/-/sinkin/new")
    page.select_option("#f-provider", "sinkin")
    page.fill("#f-name", "typo on sinkin")
    page.fill("#f-prompt", "a lighthouse")
    page.fill("#f-model_other", "4zdwGO8")
    page.fill("#f-steps", "12")
    # the plan and the estimate stay; the missing key and the unknown id are cautions
    page.wait_for_function(
        "() => document.querySelector('#sk-cautions').textContent.includes('nearest: 4zdwGOB')"
    )
    assert re.match(r"1 job, 1 image, ~[\d.]+ credits? on sinkin", page.text_content("#sk-plan"))
    assert "export SINKIN_API_KEY=" in page.text_content("#sk-cautions")
    assert page.text_content("#sk-pending") == ""
    page.screenshot(path=str(shots / "form-cautions.png"), full_page=True)
    page.click("#sk-create")
    page.locator("#sk-confirm").wait_for(state="visible")
    assert page.locator("#sk-confirm-reasons li").count() == 2
    assert page.text_content("#sk-confirm-yes") == "Queue anyway (1 job)"
    assert query(server, "select count(*) from runs where name = 'typo on sinkin'")[0][0] == 0
    page.click("#sk-confirm-yes")  # the explicit override: a model new to SinkIn keeps working
    page.wait_for_url(re.compile(r"/-/sinkin(\?.*)?$"))
    run_id = run_id_by_name(server, "typo on sinkin")
    assert query(server, "select model_id from configs where run_id = ?", [run_id]) == [("4zdwGO8",)]
    # the next form starts on the last run's provider, sinkin: no "Still to fill in: Provider."
    page.goto(server.url + "/-/sinkin/new")
    page.wait_for_function(
        "() => document.querySelector('#sk-plan').textContent.includes('on sinkin')"
        " || document.querySelector('#sk-pending').textContent !== ''"
    )
    assert page.input_value("#f-provider") == "sinkin"
    assert "Provider" not in page.text_content("#sk-pending")
    db = open_db(server.db_path)
    with db.conn:
        db.execute("update jobs set status = 'cancelled' where run_id = ?", [run_id])
    db.conn.close()
