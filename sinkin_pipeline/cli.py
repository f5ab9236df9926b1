"""The ``sinkin`` command: a thin layer over the library functions."""

import json
import sqlite3
import sys

import click

from . import __version__
from .db import (
    MAX_ID,
    DatabaseProblem,
    corrupt_message,
    default_db_path,
    is_corruption,
    open_db,
    open_readonly,
)
from .plugins import load_plugins, pm

#: the click type of every id a command takes (run, job, image): a clear error out of range
ID = click.IntRange(1, MAX_ID)
_DB_KEY = "sinkin_db"  # ctx.meta: the --db given before the command, then the database in use


def _default_db():
    ctx = click.get_current_context(silent=True)
    given = ctx.meta.get(_DB_KEY + "_global") if ctx is not None else None
    return given or default_db_path()


def db_option(f):
    """``--db``, also accepted before the command (``sinkin --db x.db runs``)."""
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        default=_default_db,
        show_default="$SINKIN_DB or ./experiments.db",
        help="The SQLite database file.",
    )(f)


def _remember(db_path):
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_DB_KEY] = db_path


def opendb(db_path, create=False):
    """The database for a command that writes (migrated; created only when ``create``)."""
    _remember(db_path)
    try:
        return open_db(db_path, create=create)
    except DatabaseProblem as e:
        raise click.ClickException(str(e))
    except (OSError, sqlite3.Error) as e:  # a folder that does not exist, no permission...
        raise click.ClickException("cannot open database {}: {}".format(db_path, e))


def readdb(db_path):
    """The database for a read-only command: never created, migrated or changed."""
    _remember(db_path)
    try:
        return open_readonly(db_path)
    except DatabaseProblem as e:
        raise click.ClickException(str(e))
    except (OSError, sqlite3.Error) as e:
        raise click.ClickException("cannot open database {}: {}".format(db_path, e))


def fail(message):
    raise click.ClickException(message)


def message_of(error):
    """An exception's message without the quotes ``str(KeyError(...))`` would add."""
    return str(error.args[0]) if len(error.args) == 1 else str(error)


class SinkinGroup(click.Group):
    """The command group: a damaged or unusable database is a readable error in every command,
    never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DatabaseProblem as e:
            raise click.ClickException(str(e))
        except sqlite3.DatabaseError as e:
            path = ctx.meta.get(_DB_KEY) or _default_db()
            if is_corruption(e):
                raise click.ClickException(corrupt_message(path, e))
            if "readonly" in str(e) or "read-only" in str(e):
                raise click.ClickException(
                    "the database {} is read-only here ({}): this command writes, so it needs a "
                    "writable file and folder; `sinkin runs`, `queue`, `export` and `models` only "
                    "read".format(path, e)
                )
            if "locked" in str(e) or "busy" in str(e):
                raise click.ClickException(
                    "the database {} is locked by another process ({}); nothing was changed: "
                    "try again".format(path, e)
                )
            raise click.ClickException("database error on {}: {}".format(path, e))
        except OverflowError as e:
            raise click.ClickException("a number is out of range ({}): ids go from 1 to {}".format(e, MAX_ID))


@click.group(cls=SinkinGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sinkin")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="The SQLite database file, for any command (same as the command's --db).",
)
@click.pass_context
def cli(ctx, db_path):
    """SinkIn Lab: sweep Stable Diffusion settings on the SinkIn API, keep every image in SQLite,
    score and rank them in Datasette.

    \b
    A typical session:
        sinkin init
        sinkin plan examples/quickstart.yml
        sinkin run examples/quickstart.yml --yes
        sinkin work --concurrency 4 --budget 50
        sinkin serve --open
    """
    if db_path:
        ctx.meta[_DB_KEY + "_global"] = db_path


def _spec_or_fail(spec_path, provider=None):
    from .spec import SpecError, read_spec_file

    try:
        return read_spec_file(spec_path, provider=provider)
    except SpecError as e:
        raise SpecProblems(e.problems, spec_path)


class SpecProblems(click.ClickException):
    def __init__(self, problems, source):
        self.problems = problems
        super().__init__(
            "{} has {} problem{}".format(source, len(problems), "" if len(problems) == 1 else "s")
        )

    def format_message(self):
        return self.message + ":\n" + "\n".join("  - " + p for p in self.problems)


def _provider_ready(name):
    from .providers import ConfigurationError, get_provider

    try:
        provider = get_provider(name)
        provider.check_ready()
    except ConfigurationError as e:
        fail(str(e))
    return provider


def max_jobs_option(f):
    return click.option(
        "--max-jobs",
        type=click.IntRange(min=1),
        metavar="N",
        help="Refuse grids of more than N jobs (default: $SINKIN_MAX_JOBS or 100,000).",
    )(f)


@cli.command()
@db_option
def init(db_path):
    """Create the database (or bring its schema up to date).

    Every other command expects the database to exist; `sinkin run` creates it too.

    \b
    Example:
        sinkin init --db experiments.db
    """
    from pathlib import Path

    existed = Path(db_path).exists()
    db = opendb(db_path, create=True)
    click.echo(
        "Database {}: {} ({} tables)".format(
            "ready" if existed else "created", db_path, len(db.table_names())
        )
    )


def _plan_db(db_path):
    """The database to estimate from: the file read-only, or an empty in-memory one when there
    is no file yet (`plan` never creates it)."""
    from pathlib import Path

    if Path(db_path).exists():
        return readdb(db_path)
    import sqlite_utils

    from .migrations import migrations

    db = sqlite_utils.Database(memory=True)
    migrations.apply(db)
    return db


def _plan_or_fail(db, spec, provider, max_jobs):
    from .providers import ConfigurationError
    from .runs import GridTooLarge, make_plan

    try:
        return make_plan(db, spec, provider, max_jobs_override=max_jobs)
    except (ConfigurationError, GridTooLarge, ValueError) as e:
        fail(str(e))


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--provider", help="Override the spec's provider (sinkin or simulator).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@max_jobs_option
@db_option
def plan(spec_path, provider, as_json, max_jobs, db_path):
    """Show what SPEC would queue and cost, without writing anything.

    Estimates learn from the costs recorded in the database (if there is one yet).

    \b
    Example:
        sinkin plan examples/quickstart.yml
    """
    from .models import known_models, unknown_ids
    from .planview import plan_lines
    from .runs import provider_name

    spec = _spec_or_fail(spec_path, provider)
    db = _plan_db(db_path)
    result = _plan_or_fail(db, spec, provider, max_jobs)
    # plan writes nothing: an empty model cache is read from the provider, not stored
    unknown = unknown_ids(known_models(db, provider_name(spec, provider), store=False), spec.values)
    if as_json:
        click.echo(json.dumps(dict(result.to_dict(), unknown_ids=unknown), indent=2))
        return
    for line in plan_lines(spec, result):
        click.echo(line)
    for w in unknown:
        click.echo("Warning: " + w)
    if unknown:
        click.echo("(`sinkin run` queues these only with --allow-unknown-ids.)")


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--name", help="Name of the run (default: the spec's name).")
@click.option("--provider", help="Override the spec's provider (sinkin or simulator).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before a large or costly grid.")
@click.option(
    "--allow-unknown-ids",
    is_flag=True,
    help="Queue model or LoRA ids that are not in the cached model list (e.g. a new model).",
)
@max_jobs_option
@db_option
def run(spec_path, name, provider, yes, allow_unknown_ids, max_jobs, db_path):
    """Create a run from SPEC and queue one job per config (nothing is spent yet).

    Creates the database if there is none yet. Run the queue with `sinkin work` (all) or
    `sinkin next` (one job). Model and LoRA ids are checked against the cached model list
    (fetched on first use); an unknown id is refused with the nearest known ids unless
    --allow-unknown-ids is given. Grids above 100,000 jobs are refused unless --max-jobs (or
    $SINKIN_MAX_JOBS) raises the ceiling.

    \b
    Example:
        sinkin run examples/quickstart.yml --name "first sweep"
        sinkin work
    """
    from pathlib import Path

    from .models import cache_if_empty, known_models, unknown_ids
    from .runs import GridTooLarge, check_grid_size, create_run, provider_name
    from .wording import credit_text, plural

    spec = _spec_or_fail(spec_path, provider)
    _provider_ready(provider_name(spec, provider))
    try:  # refuse a grid above the ceiling before a database file is created for it
        check_grid_size(spec.config_count(), max_jobs)
    except (GridTooLarge, ValueError) as e:
        fail(str(e))
    db = opendb(db_path, create=True)
    known = known_models(db, provider_name(spec, provider), store=False)
    unknown = unknown_ids(known, spec.values)
    if unknown and not allow_unknown_ids:
        fail(
            "nothing queued: {}\n  - {}\nFix the spec, or pass --allow-unknown-ids to use them anyway "
            "(e.g. a model added to SinkIn since `sinkin models --refresh`).".format(
                plural(len(unknown), "unknown id"), "\n  - ".join(unknown)
            )
        )
    result = _plan_or_fail(db, spec, provider, max_jobs)
    what = "{}, {}, {} estimated".format(
        plural(result.jobs, "job"), plural(result.images, "image"), credit_text(result.credits, estimate=True)
    )
    if result.needs_confirmation() and not yes:
        message = "Queue {}?".format(what)
        if not sys.stdin.isatty():
            fail(message[:-1] + ": that is a large or costly grid; pass --yes to confirm.")
        if not click.confirm(message):
            fail("Nothing queued.")
    try:
        run_id = create_run(
            db,
            spec,
            name=name,
            provider=provider,
            spec_yaml=Path(spec_path).read_text(encoding="utf-8"),
            max_jobs_override=max_jobs,
        )
    except GridTooLarge as e:
        fail(str(e))
    cache_if_empty(db, known)  # first use: the list fetched for the check is kept
    click.echo("Run {} queued: {}.".format(run_id, what))
    seeds = db.execute(
        "select distinct seed from configs where run_id = ? order by position", [run_id]
    ).fetchall()
    if spec.random_seeds or "seed" not in spec.values:
        click.echo("Seeds drawn: {}".format(", ".join(str(r[0]) for r in seeds)))
    click.echo("Next: `sinkin work` to run them all, or `sinkin next` for one.")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
def runs(as_json, db_path):
    """List runs with image counts (total, unrated, upscaled), jobs in every state and credits.

    \b
    Example:
        sinkin runs --json
    """
    from .queue import JobStatus
    from .runs import JOB_STATES, run_counts
    from .wording import money

    rows = run_counts(readdb(db_path))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No runs yet. Start with: sinkin run SPEC")
        return
    states = [
        s for s in JOB_STATES if any(r.get(s) for r in rows) or s in (JobStatus.QUEUED, JobStatus.FAILED)
    ]
    header = "{:>4}  {:<28} {:>6} {:>8} {:>8}".format("id", "name", "total", "unrated", "upscaled")
    click.echo(
        header + "".join(" {:>{w}}".format(s, w=max(6, len(s))) for s in states) + " {:>9}".format("credits")
    )
    for r in rows:
        line = "{:>4}  {:<28} {:>6} {:>8} {:>8}".format(
            r["run_id"], (r["name"] or "")[:28], r["total"], r["unrated"], r["upscaled"]
        )
        click.echo(
            line
            + "".join(" {:>{w}}".format(r.get(s) or 0, w=max(6, len(s))) for s in states)
            + " {:>9}".format(money(r["credits"]))
        )


@cli.command()
@click.argument("image_id")
@click.argument("score")
@db_option
def score(image_id, score, db_path):
    """Give IMAGE_ID a SCORE from 1 to 10 (or "clear").

    \b
    Example:
        sinkin score 42 8
    """
    from .scoring import ScoreError, score_image

    db = opendb(db_path)
    try:
        result = score_image(db, image_id, score)
    except (ScoreError, LookupError) as e:
        fail(message_of(e))
    click.echo("Image {} scored {}".format(result["id"], result["score"] if result["score"] else "(cleared)"))


@cli.command()
@click.option("--run", "run_id", type=ID, help="Only this run.")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File to write (default: stdout)."
)
@db_option
def export(run_id, output, db_path):
    """Export image_table (every image with its settings and score) as CSV.

    Cells that begin with = + - @ are prefixed with ' so spreadsheets do not run them.

    \b
    Example:
        sinkin export --run 3 -o run3.csv
    """
    from .export import export_csv

    db = readdb(db_path)
    if run_id is not None and not db.execute("select 1 from runs where id = ?", [run_id]).fetchone():
        fail("run {} not found".format(run_id))
    if output:
        with open(output, "w", newline="", encoding="utf-8") as fp:
            n = export_csv(db, fp, run_id=run_id)
        click.echo("Wrote {} rows to {}".format(n, output), err=True)
    else:
        export_csv(db, sys.stdout, run_id=run_id)


@cli.command(name="plugins")
def plugins_command():
    """List the loaded plugins and the hooks each implements.

    \b
    Example:
        sinkin plugins
    """
    from .plugins import get_plugins

    click.echo(json.dumps(get_plugins(), indent=2))


def _register_extra():
    from . import (
        cli_insights,  # noqa: F401  (insights, suggest)
        cli_models,  # noqa: F401  (models)
        cli_queue,  # noqa: F401  (work, next, queue, retry, recover, cancel)
        cli_upscale,  # noqa: F401  (upscale, upscalers)
        serve,  # noqa: F401  (serve)
    )

    load_plugins()
    pm.hook.register_commands(cli=cli)


_register_extra()
