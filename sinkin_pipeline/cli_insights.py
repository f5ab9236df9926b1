"""CLI commands that read what a run taught: ``sinkin insights`` and ``sinkin suggest``.
Thin wrappers over insights.py and suggest.py."""

import json

import click

from .cli import ID, cli, db_option, fail, message_of, readdb


def _run_ids(run_ids):
    ids = []
    for part in ",".join(run_ids).split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            fail(
                "--run: {!r} is not a run id (a whole number; several as 1,3 or --run 1 --run 3)".format(part)
            )
        if not 1 <= int(part) <= ID.max:
            fail("--run: {} is out of range (run ids go from 1 to {})".format(part, ID.max))
        ids.append(int(part))
    if not ids:
        fail("--run: give a run id (see `sinkin runs`)")
    return ids


def format_insights(result):
    """The insights as a readable terminal table."""
    from .insights import fmt, fmt_ci

    runs = result["run_ids"]
    lines = [
        "{} {}: {} images, {} rated{}".format(
            "Run" if len(runs) == 1 else "Runs",
            ", ".join(map(str, runs)),
            result["images"],
            result["rated"],
            " (scores as deviations from each prompt's mean)" if result["normalize"] == "prompt" else "",
        ),
        result["summary"],
        "",
    ]
    for axis in result["axes"]:
        share = axis["importance"]
        lines.append(
            "{}{}".format(
                axis["axis"],
                "" if share is None else "  (explains {:.0f}% of score variance)".format(share * 100),
            )
        )
        width = max([5] + [len(str(v["value"])[:40]) for v in axis["values"]])
        lines.append(
            "  {:<{w}} {:>6} {:>6} {:>6} {:>15} {:>7}   {}".format(
                "value", "images", "rated", "mean", "95% CI", "s/img", "vs best (paired)", w=width
            )
        )
        paired = {p["value"]: p for p in axis["paired"]}
        for v in axis["values"]:
            p = paired.get(v["value"])
            if v["value"] == axis["best"]:
                vs = "best"
            elif p is None or not p["pairs"]:
                vs = "no pairs"
            else:
                vs = "{:+.1f} ({}), {} pair{}".format(
                    p["mean_diff"],
                    fmt_ci(p["ci_low"], p["ci_high"]),
                    p["pairs"],
                    "" if p["pairs"] == 1 else "s",
                )
            lines.append(
                "  {:<{w}} {:>6} {:>6} {:>6} {:>15} {:>7}   {}".format(
                    str(v["value"])[:40],
                    v["images"],
                    v["rated"],
                    fmt(v["mean"]),
                    fmt_ci(v["ci_low"], v["ci_high"]),
                    fmt(v["seconds"], 2),
                    vs,
                    w=width,
                )
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


@cli.command()
@click.option(
    "--run",
    "run_ids",
    multiple=True,
    required=True,
    metavar="ID",
    help="The run (repeat, or 1,3, to pool several runs).",
)
@click.option(
    "--normalize",
    type=click.Choice(["prompt"]),
    help="Scores as deviations from each prompt's mean (some prompts are easier).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (the page's .json shape).")
@db_option
def insights(run_ids, normalize, as_json, db_path):
    """Which settings win: per value of every setting that varies, the mean score with a 95%
    interval, the paired effect against the best value, and the settings ranked by how much
    of the score variance they explain.

    \b
    Examples:
        sinkin insights --run 3
        sinkin insights --run 1,3 --normalize prompt --json
    """
    from .insights import InsightsError
    from .insights import insights as compute

    db = readdb(db_path)
    try:
        result = compute(db, _run_ids(run_ids), normalize=normalize)
    except (LookupError, InsightsError) as e:
        fail(message_of(e))
    if as_json:
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(format_insights(result), nl=False)


@cli.command()
@click.option("--run", "run_id", type=ID, required=True, metavar="ID", help="The run to learn from.")
@click.option(
    "--normalize",
    type=click.Choice(["prompt"]),
    help="Judge on scores as deviations from each prompt's mean, as `insights --normalize prompt`.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the spec to this file (default: print it).",
)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@db_option
def suggest(run_id, normalize, output, force, db_path):
    """Suggest the next run from a run's scores: keep the values whose interval overlaps the
    best one, drop the clearly worse, refine numeric settings around the best, and draw fresh
    seeds to confirm. Prints (or writes) a spec that `sinkin plan` and `sinkin run` accept, with
    the reasoning as comments.

    \b
    Examples:
        sinkin suggest --run 3
        sinkin suggest --run 3 -o next.yml && sinkin plan next.yml
        sinkin suggest --run 3 --normalize prompt   # some prompts are easier
    """
    import os

    from .suggest import suggest as make

    db = readdb(db_path)
    try:
        result = make(db, run_id, normalize=normalize)
    except LookupError as e:
        fail(message_of(e))
    if not output:
        click.echo(result["yaml"], nl=False)
        return
    if os.path.exists(output) and not force:
        fail("{} exists; pass --force to overwrite it".format(output))
    try:
        with open(output, "w", encoding="utf-8") as fp:
            fp.write(result["yaml"])
    except OSError as e:
        fail("cannot write {}: {}".format(output, e.strerror or e))
    for reason in result["reasons"]:
        click.echo(reason)
    click.echo("Wrote {}. Next: sinkin plan {}".format(output, output))
