"""Images a provider returns inline (bytes, no URL: local providers such as a1111) survive a worker
killed at any point: the files are written (fsynced, renamed) before the answer that refers to them
is recorded, and a resumed job finds them on disk. Real processes, killed with SIGKILL from inside
the two windows that matter."""

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

#: a provider plugin run in a child process; MODE says where the process kills itself
SCRIPT = textwrap.dedent(
    """
    import io, os, signal, sys
    from PIL import Image
    from sinkin_pipeline import GeneratedImage, InferenceResult, Provider, hookimpl
    from sinkin_pipeline.plugins import load_plugins, pm

    MODE, MIXED = os.environ["INLINE_MODE"], os.environ.get("INLINE_MIXED") == "1"

    def png(colour):
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), colour).save(buffer, format="PNG")
        return buffer.getvalue()

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    class Inline(Provider):
        name = "inline"
        free = True

        def inference(self, payload, init_image=None):
            with open(os.environ["INLINE_CALLS"], "a") as fp:
                fp.write("call\\n")
            images = [GeneratedImage(data=png((200, 0, 0)), seed=12)]
            if MIXED:  # a URL first: the old worker stored the answer, then downloaded it first
                images.insert(0, GeneratedImage(url="http://127.0.0.1:9/first.png", seed=11))
            return InferenceResult(images=images, inf_id="local-1")

        def download(self, url):
            if MODE == "kill-in-download":
                die()
            return png((0, 0, 200))

    class Plugin:
        @hookimpl
        def register_providers(self, register):
            register(Inline)

        @hookimpl(tryfirst=True)
        def image_thumbnail(self, path):
            if MODE == "kill-after-file":
                die()
            return None

    load_plugins()
    pm.register(Plugin(), name="inline-test")
    if MODE == "queue":
        from sinkin_pipeline.db import open_db
        from sinkin_pipeline.runs import create_run
        from sinkin_pipeline.spec import check_spec

        create_run(open_db(sys.argv[1]), check_spec({"provider": "inline", "model_id": "m", "prompt": "a fox"}))
    elif MODE == "retry":
        from sinkin_pipeline.db import open_db
        from sinkin_pipeline.queue import retry_jobs

        print(retry_jobs(open_db(sys.argv[1]), resend=sys.argv[2:] == ["--resend"]))
    else:
        from sinkin_pipeline.worker import work

        summary = work(sys.argv[1])
        print(summary.succeeded, summary.failed, summary.interrupted)
    """
)


@pytest.fixture
def child(tmp_path):
    script = tmp_path / "inline_child.py"
    script.write_text(SCRIPT)
    db_path = tmp_path / "lab.db"
    calls = tmp_path / "calls.txt"

    def run(mode, *args, mixed=False):
        env = dict(os.environ, INLINE_MODE=mode, INLINE_CALLS=str(calls), INLINE_MIXED="1" if mixed else "0")
        return subprocess.run(
            [sys.executable, str(script), str(db_path), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    run("queue")
    run.db_path = db_path
    run.calls = lambda: len(calls.read_text().splitlines()) if calls.exists() else 0
    return run


def query(db_path, sql):
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_killed_during_a_download_after_the_answer_is_stored_the_inline_image_is_kept(child):
    killed = child("kill-in-download", mixed=True)
    assert killed.returncode == -9, killed.stderr
    # the answer is stored (before any download), and the inline image's file was written before it
    assert query(child.db_path, "select status, inf_id from jobs") == [("running", "local-1")]
    inline_file = child.db_path.parent / "lab_media" / "run_1" / "job_1_1.png"
    assert inline_file.exists()
    first = inline_file.read_bytes()
    resumed = child("work")  # recovers the dead worker's job as interrupted (answer stored)
    assert resumed.returncode == 0, resumed.stderr
    assert child("retry").returncode == 0  # the default retry: download only, no new call
    done = child("work")
    assert done.returncode == 0 and done.stdout.split()[:2] == ["1", "0"], done.stdout + done.stderr
    assert child.calls() == 1  # never sent twice
    assert query(child.db_path, "select status from jobs") == [("succeeded",)]
    assert query(
        child.db_path, "select image_index, provider_seed, download_error, path is not null from images"
    ) == [(0, 11, None, 1), (1, 12, None, 1)]
    assert inline_file.read_bytes() == first


def test_killed_after_the_files_are_written_no_answer_is_recorded_without_its_image(child):
    killed = child("kill-after-file")
    assert killed.returncode == -9, killed.stderr
    # the file is complete on disk; the answer is not recorded, so no job claims an image it lost
    assert query(child.db_path, "select status, raw_response from jobs") == [("running", None)]
    assert (child.db_path.parent / "lab_media" / "run_1" / "job_1_0.png").exists()
    assert query(child.db_path, "select count(*) from images") == [(0,)]
    assert child("work").returncode == 0  # the dead worker's job: interrupted, may have been sent
    assert query(child.db_path, "select status from jobs") == [("interrupted",)]
    assert child("retry", "--resend").returncode == 0
    done = child("work")
    assert done.returncode == 0 and done.stdout.split()[:2] == ["1", "0"], done.stdout + done.stderr
    assert query(
        child.db_path, "select download_error, path is not null, thumbnail is not null from images"
    ) == [(None, 1, 1)]
