"""CLI commands for upscaling: ``upscale`` one image and list the ``upscalers`` offered for an
image's provider. Thin wrappers over upscaling.py and upscalers.py."""

import json

import click

from .cli import ID, cli, db_option, fail, message_of, opendb


def _range(name):
    from .fields import UPSCALE_FIELDS

    fld = UPSCALE_FIELDS[name]
    return "{:g} to {:g}, default {:g}".format(fld.min, fld.max, fld.default)


def _option_pairs(ctx, param, values):
    options = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter("expected NAME=VALUE, got {!r}".format(item))
        options[name.strip()] = value.strip()
    return options


@cli.command()
@click.argument("image_id", type=ID)
@click.option(
    "--type",
    "upscale_type",
    metavar="TYPE",
    help="An upscaler offered for the image's provider (`sinkin upscalers` lists them); "
    "default: the first one.",
)
@click.option("--scale", type=float, help="ESRGAN factor ({}).".format(_range("scale")))
@click.option("--strength", type=float, help="Hires fix strength ({}).".format(_range("strength")))
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    callback=_option_pairs,
    metavar="NAME=VALUE",
    help="Any option the upscaler declares (repeatable).",
)
@db_option
def upscale(image_id, upscale_type, scale, strength, options, db_path):
    """Upscale one image (an upscale job; its cost is recorded).

    \b
    Examples:
        sinkin upscale 42
        sinkin upscale 42 --scale 4
        sinkin upscale 42 --type hires_fix --strength 0.4
        sinkin upscale 42 --type hires_fix -o strength=0.4
    """
    from .providers import ConfigurationError, ProviderError
    from .upscaling import UpscaleError, upscale_image

    opendb(db_path)
    try:
        image = upscale_image(
            db_path, image_id, upscale_type, scale=scale, strength=strength, options=options
        )
    except (UpscaleError, LookupError, ConfigurationError) as e:
        fail(message_of(e))
    except ProviderError as e:
        fail("upscale failed: {}".format(e))
    click.echo("Image {} upscaled ({}): {}".format(image_id, image["upscale_type"], image["upscale_path"]))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def upscalers(as_json):
    """List the upscale types the plugins register, their options and the providers they apply to.

    \b
    Examples:
        sinkin upscalers
        sinkin upscalers --json
    """
    from .upscalers import get_upscalers

    found = get_upscalers()
    if as_json:
        click.echo(json.dumps([dict(u.as_json(), providers=u.providers) for u in found.values()], indent=2))
        return
    for upscaler in found.values():
        options = (
            ", ".join("{} ({})".format(f.name, f.allowed()) for f in upscaler.options.values()) or "none"
        )
        click.echo(
            "{}: {} – options: {}; providers: {}".format(
                upscaler.name,
                upscaler.description,
                options,
                ", ".join(upscaler.providers) if upscaler.providers is not None else "any with upscale()",
            )
        )
