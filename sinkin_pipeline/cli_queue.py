"""CLI commands that drain and mend the queue: queue, next, work, retry, recover, cancel. Thin
wrappers over worker.py and queue.py (upscale: cli_upscale.py; models: cli_models.py)."""

import json
import sqlite3

import click

from .cli import ID, cli, db_option, fail, opendb, readdb
from .storage import StorageError


def _recover(db):
    from .queue import recover_stale
    from .wording import plural

    n = recover_stale(db)
    if n:
        click.echo(
            "{} left running by a worker that stopped (its lease ran out) marked interrupted "
            "(`sinkin retry` re-queues them).".format(plural(n, "job")),
            err=True,
        )


def _storage_message(error):
    """A database or disk failure before any job started: nothing was spent."""

    detail = str(error) if isinstance(error, StorageError) else "{}: {}".format(type(error).__name__, error)
    return "storage error, nothing was sent: {}".format(detail)


def _run_exists(db, run_id):
    if run_id is not None and not db.execute("select 1 from runs where id = ?", [run_id]).fetchone():
        fail("run {} not found".format(run_id))


@cli.command()
@click.option("--run", "run_id", type=ID, help="Only this run's jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--show",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    metavar="N",
    help="List the first N jobs (the totals always count every queued job).",
)
@db_option
def queue(run_id, as_json, show, db_path):
    """List upcoming jobs in the order they will run, with estimated credits.

    \b
    Example:
        sinkin queue --run 2
    """
    from .queue import list_queue, queue_totals
    from .wording import credit_text, money, plural

    db = readdb(db_path)
    _run_exists(db, run_id)
    count, total = queue_totals(db, run_id=run_id)
    jobs = list_queue(db, run_id=run_id, limit=show)
    if as_json:
        click.echo(json.dumps({"jobs": jobs, "count": count, "total_estimate": total}, indent=2))
        return
    if not count:
        click.echo("The queue is empty.")
        return
    for j in jobs:
        if j["kind"] == "upscale":
            what = "upscale image {}".format(j.get("image_id"))
        else:
            what = "{} {}x{} {} steps cfg {:g} {} seed {}  {}".format(
                j["model_id"],
                j["width"],
                j["height"],
                j["steps"],
                j["scale"],
                j["scheduler"],
                j["seed"],
                (j["prompt"] or "")[:40],
            )
        click.echo(
            "job {:>5}  run {:>3}  ~{:>6} cr  {}".format(
                j["id"], j["run_id"], money(j["credit_estimate"]), what
            )
        )
    if count > len(jobs):
        click.echo("… and {:,} more (--show N lists more)".format(count - len(jobs)))
    click.echo("{}, {} estimated".format(plural(count, "job"), credit_text(total, estimate=True)))


@cli.command(name="next")
@click.option("--run", "run_id", type=ID, help="Take the next job of this run only.")
@db_option
def next_command(run_id, db_path):
    """Run exactly one queued job ("Run next") and show what it produced.

    Ctrl-C (or SIGTERM/SIGHUP) waits for the request in flight and stores its answer; a second
    Ctrl-C stops at once and marks the job interrupted.

    \b
    Example:
        sinkin next
    """
    from .interrupts import GracefulStop
    from .providers import ConfigurationError
    from .queue import JobStatus
    from .wording import credit_text, plural
    from .worker import run_next

    db = opendb(db_path)
    _run_exists(db, run_id)
    _recover(db)
    with GracefulStop() as stopper:
        try:
            job = run_next(
                db_path,
                run_id=run_id,
                stop_event=stopper.stop,
                abandon_event=stopper.abandon,
                on_stopping=stopper.report,
            )
        except ConfigurationError as e:
            fail(str(e))
        except (sqlite3.Error, OSError, StorageError) as e:
            fail(_storage_message(e))
    if job is None:
        if stopper.signalled:
            click.echo(
                "Stopped by {} before the job started; nothing was spent.".format(stopper.signal_name())
            )
            raise SystemExit(stopper.exit_code)
        click.echo("The queue is empty.")
        return
    click.echo(
        "Job {} {}: {}, {}{}".format(
            job["id"],
            job["status"],
            plural(job.get("images", 0), "image"),
            credit_text(job.get("new_credits")),
            (" – " + job["error"]) if job.get("error") else "",
        )
    )
    for image_id, path in db.execute(
        "select id, coalesce(upscale_path, path) from images where job_id = ? "
        "or upscale_job_id = ? order by image_index",
        [job["id"], job["id"]],
    ):
        click.echo("  image {}: {}".format(image_id, path or "(not downloaded: `sinkin retry` fetches it)"))
    if stopper.signalled:
        raise SystemExit(stopper.exit_code)
    if job["status"] != JobStatus.SUCCEEDED:
        raise SystemExit(1)


def _provider_limits(ctx, param, value):
    from .limits import InvalidProviderLimit, parse_provider_limits

    try:
        return parse_provider_limits(value)
    except InvalidProviderLimit as e:
        raise click.BadParameter(str(e))


def _budget(ctx, param, value):
    from .session import InvalidBudget, check_budget

    try:
        return check_budget(value)
    except InvalidBudget as e:
        raise click.BadParameter(str(e))


@cli.command()
@click.option("--run", "run_id", type=ID, help="Only this run's jobs.")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 32),
    default=1,
    show_default=True,
    help="Jobs in flight at once.",
)
@click.option(
    "--budget",
    type=float,
    callback=_budget,
    metavar="CREDITS",
    help="A cap on this session's spending: a job starts only if CREDITS minus what is spent "
    "and reserved for the jobs in flight covers the most it could cost.",
)
@click.option(
    "--provider-concurrency",
    "provider_limits",
    multiple=True,
    callback=_provider_limits,
    metavar="NAME=N",
    help="At most N requests in flight at provider NAME (repeatable). Without it, in a queue of "
    "several providers, a provider's own default applies (a1111: 1, or SINKIN_A1111_CONCURRENCY) "
    "while the other slots keep running other providers' jobs; a queue of one provider's jobs runs "
    "--concurrency of them.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Run at most N jobs.", metavar="N")
@db_option
def work(run_id, concurrency, budget, provider_limits, limit, db_path):
    """Drain the queue: run queued jobs with a progress bar of jobs, images and credits.

    Several `sinkin work` processes may share one database; no job runs twice. Ctrl-C (or
    SIGTERM/SIGHUP) stops starting jobs, waits for the requests in flight and stores their
    answers; a second Ctrl-C stops at once and marks the jobs in flight interrupted.

    \b
    Examples:
        sinkin work
        sinkin work --concurrency 4 --budget 25
        sinkin work --run 3 --limit 10
        sinkin work --concurrency 8 --provider-concurrency a1111=2
    """
    from .interrupts import GracefulStop
    from .providers import ConfigurationError
    from .queue import queue_totals
    from .session import BudgetTooSmall
    from .wording import credit_text, plural
    from .worker import work as do_work

    db = opendb(db_path)
    _run_exists(db, run_id)
    _recover(db)
    pending = queue_totals(db, run_id=run_id)[0]
    if limit:
        pending = min(pending, limit)
    if not pending:
        click.echo("The queue is empty.")
        return
    with (
        GracefulStop(what="request") as stopper,
        click.progressbar(
            length=pending, label="jobs", show_pos=True, width=24, item_show_func=lambda s: s
        ) as bar,
    ):
        state = {"done": 0}

        def progress(summary):
            step = summary.jobs - state["done"]
            state["done"] = summary.jobs
            bar.update(
                step,
                "{}, {}{}".format(
                    plural(summary.images, "image"),
                    credit_text(summary.spent),
                    ", {} failed".format(summary.failed) if summary.failed else "",
                ),
            )

        try:
            summary = do_work(
                db_path,
                run_id=run_id,
                concurrency=concurrency,
                budget=budget,
                limit=limit,
                provider_limits=provider_limits,
                progress=progress,
                stop_event=stopper.stop,
                abandon_event=stopper.abandon,
                on_stopping=stopper.report,
            )
        except BudgetTooSmall as e:
            fail(str(e))
        except ConfigurationError as e:
            fail(str(e))
        except (sqlite3.Error, OSError, StorageError) as e:
            fail(_storage_message(e))
    counts = "{} ({} succeeded, {} failed, {} interrupted), {}, {}.".format(
        plural(summary.jobs, "job"),
        summary.succeeded,
        summary.failed,
        summary.interrupted,
        plural(summary.images, "image"),
        summary.spending(),
    )
    if stopper.signalled:
        click.echo("Stopped by {}: {}".format(stopper.signal_name(), counts))
    elif summary.error:
        click.echo("Stopped early: " + counts)
    else:
        click.echo("Done: " + counts)
    if summary.stopped:
        click.echo(summary.stopped)
    for message in summary.messages:
        click.echo("  " + message)
    if summary.failed or summary.interrupted:
        click.echo("See failures with `sinkin runs`; re-queue them with `sinkin retry`.")
    if stopper.signalled:
        raise SystemExit(stopper.exit_code)
    if summary.failed or summary.interrupted or summary.error:
        raise SystemExit(1)


@cli.command()
@click.option("--run", "run_id", type=ID, help="Only this run's jobs.")
@click.option(
    "--resend",
    is_flag=True,
    help="Also re-queue jobs with no stored answer: they are sent, and paid for, again.",
)
@db_option
def retry(run_id, resend, db_path):
    """Re-queue failed and interrupted jobs, saying what that costs.

    By default only jobs whose answer is stored are re-queued: SinkIn was paid and the next
    `sinkin work` only downloads their images, at no cost. Jobs without an answer are sent again
    only with --resend; the command says how many there are, how many may already have been
    charged (sent, no answer came) and the credits re-sending them is estimated to cost. A failed
    upscale whose image was upscaled again since is never re-sent.

    \b
    Examples:
        sinkin retry --run 3
        sinkin retry --resend
    """
    from .queue import retry_jobs, retry_plan
    from .wording import credit_text, plural

    db = opendb(db_path)
    _run_exists(db, run_id)
    _recover(db)
    plan = retry_plan(db, run_id=run_id)
    retry_jobs(db, run_id=run_id, resend=resend)
    downloads = plan["download"][0]
    unknown, unpaid = plan["unknown"][0], plan["unpaid"][0]
    credits = plan["unknown"][1] + plan["unpaid"][1]
    paid_note = (
        " ({} may already have been charged once: sent, and no answer came)".format(unknown)
        if unknown
        else ""
    )
    click.echo(
        "{} re-queued to fetch images already paid for (no new charge).".format(plural(downloads, "job"))
    )
    if unknown + unpaid:
        if resend:
            click.echo(
                "{} re-queued to be sent again: {} estimated{}.".format(
                    plural(unknown + unpaid, "job"), credit_text(credits, estimate=True), paid_note
                )
            )
        else:
            click.echo(
                "{} without a stored answer not re-queued: sending them again costs {} "
                "estimated{}. Re-send them with `sinkin retry --resend`.".format(
                    plural(unknown + unpaid, "job"), credit_text(credits, estimate=True), paid_note
                )
            )
    if plan["superseded"][0]:
        click.echo("{} redone since: not sent again.".format(plural(plan["superseded"][0], "failed upscale")))


@cli.command()
@click.option(
    "--force",
    is_flag=True,
    help="Also free running jobs whose lease is still live (when you know their worker is gone).",
)
@db_option
def recover(force, db_path):
    """Free jobs left running by a worker that stopped: they become interrupted.

    A worker renews a lease on each job it runs; a job whose lease ran out (its worker was
    killed, its container restarted...) is freed wherever it ran. `sinkin retry` then re-queues
    it. --force frees running jobs with a live lease too.

    \b
    Examples:
        sinkin recover
        sinkin recover --force
    """
    from .leases import live_leases
    from .queue import recover_stale
    from .wording import plural

    db = opendb(db_path)
    n = recover_stale(db, force=force)
    if force:
        click.echo("{} marked interrupted.".format(plural(n, "running job")))
    else:
        click.echo("{} whose worker stopped marked interrupted.".format(plural(n, "job")))
    live, seconds = live_leases(db)
    if live:
        click.echo(
            "{} still {} a live worker (leases renewed; the last runs out in {:.0f} s unless renewed). "
            "If you know {} worker is gone: `sinkin recover --force`.".format(
                plural(live, "job"), "has" if live == 1 else "have", seconds, "its" if live == 1 else "their"
            )
        )
    if n:
        click.echo("`sinkin retry` re-queues them (answered ones download at no cost).")


@cli.command()
@click.option("--run", "run_id", type=ID, help="Only this run's jobs.")
@db_option
def cancel(run_id, db_path):
    """Cancel queued jobs (running jobs finish; nothing already paid is lost).

    \b
    Example:
        sinkin cancel --run 3
    """
    from .queue import cancel_jobs

    db = opendb(db_path)
    _run_exists(db, run_id)
    n = cancel_jobs(db, run_id=run_id)
    click.echo("{} job{} cancelled.".format(n, "" if n == 1 else "s"))
