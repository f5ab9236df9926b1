"""`sinkin retry` says what it costs: download-only jobs (paid, answer stored) by default,
jobs without an answer only with --resend; a failed upscale that was redone is never re-sent and
every paid upscale file stays referenced."""

import sqlite3

import pytest
from click.testing import CliRunner

from sinkin_pipeline.cli import cli
from sinkin_pipeline.providers import (
    DownloadError,
    OutcomeUnknown,
    ProviderError,
    ServiceError,
    TransientError,
)
from sinkin_pipeline.upscaling import upscale_image
from sinkin_pipeline.worker import work

SPEC = {"provider": "fake", "model_id": "m", "prompt": "a fox", "seed": [1, 2, 3, 4]}


def rows(db_path, sql, params=()):
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_retry_fetches_paid_answers_and_resends_only_when_told(db_path, make_run, fake_provider):
    make_run(db_path, SPEC)
    conn = sqlite3.connect(db_path)
    conn.execute("update jobs set credit_estimate = 1.5")
    conn.commit()
    conn.close()
    fake_provider.script["inference"] = [
        None,
        OutcomeUnknown("read timeout"),
        ServiceError("Model not found"),
    ]
    fake_provider.script["download"] = [TransientError("HTTP 502")] * 5
    work(db_path)
    states = [r["status"] for r in rows(db_path, "select status from jobs order by id")]
    assert states == ["failed", "interrupted", "failed", "succeeded"]
    calls = len(fake_provider.calls["inference"])
    result = invoke("retry", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "1 job re-queued to fetch images already paid for (no new charge)" in result.output
    assert (
        "2 jobs without a stored answer not re-queued: sending them again costs ~3 credits estimated "
        "(1 may already have been charged once: sent, and no answer came)"
    ) in result.output
    assert "sinkin retry --resend" in result.output
    assert [r["status"] for r in rows(db_path, "select status from jobs order by id")] == [
        "queued",
        "interrupted",
        "failed",
        "succeeded",
    ]
    assert work(db_path).succeeded == 1 and len(fake_provider.calls["inference"]) == calls  # free
    result = invoke("retry", "--db", db_path, "--resend")
    assert "2 jobs re-queued to be sent again: ~3 credits estimated" in result.output
    assert work(db_path).succeeded == 2 and len(fake_provider.calls["inference"]) == calls + 2
    assert {r["status"] for r in rows(db_path, "select status from jobs")} == {"succeeded"}


@pytest.fixture
def image_id(db_path, make_run, fake_provider):
    make_run(db_path, dict(SPEC, seed=[1]))
    work(db_path)
    return rows(db_path, "select id from images")[0]["id"]


def test_a_failed_upscale_that_was_redone_is_not_sent_again(db_path, image_id, fake_provider):
    fake_provider.script["upscale"] = [OutcomeUnknown("read timeout")]
    with pytest.raises(ProviderError):
        upscale_image(db_path, image_id)
    upscale_image(db_path, image_id)  # redone: succeeds
    result = invoke("retry", "--db", db_path, "--resend")
    assert "1 failed upscale redone since: not sent again." in result.output
    assert "0 jobs re-queued to be sent again" not in result.output
    work(db_path)
    assert len(fake_provider.calls["upscale"]) == 2
    assert [
        r["status"] for r in rows(db_path, "select status from jobs where kind = 'upscale' order by id")
    ] == ["interrupted", "succeeded"]


def test_a_paid_upscale_fetched_after_a_redo_stays_referenced(db_path, image_id, fake_provider):
    fake_provider.script["download"] = [DownloadError("HTTP 404")] * 3
    with pytest.raises(ProviderError):
        upscale_image(db_path, image_id)  # paid, its file could not be fetched
    fake_provider.script["download"] = []
    upscale_image(db_path, image_id)  # redone
    newest = rows(db_path, "select upscale_path, upscale_job_id from images")[0]
    assert "1 job re-queued to fetch images already paid for" in invoke("retry", "--db", db_path).output
    work(db_path)  # fetches the first upscale's file at no cost
    assert len(fake_provider.calls["upscale"]) == 2
    jobs = rows(db_path, "select id, status, output_path from jobs where kind = 'upscale' order by id")
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"]
    assert all(j["output_path"] and (db_path.parent / j["output_path"]).exists() for j in jobs)
    assert jobs[0]["output_path"] != jobs[1]["output_path"]
    # the image still shows the newest upscale; the older paid file is referenced by its job
    assert rows(db_path, "select upscale_path, upscale_job_id from images")[0] == newest
    assert newest["upscale_job_id"] == jobs[1]["id"]
