"""The run form ``/-/sinkin/new``: design a grid, see what it costs while typing, queue it.

* ``check.json`` – the form → a spec dict → ``spec.check_spec`` + ``runs.make_plan``: the plan
  ("N jobs, M images, ~C credits") and the problems keyed by form field, plus the YAML.
* ``create.json`` – the same checks, then ``runs.create_run`` with the page's ``request_key``
  (a second POST with the same key answers with the first run instead of creating another).
  A grid over ``runs.CONFIRM_JOBS`` jobs or ``runs.CONFIRM_CREDITS`` credits needs ``confirm: true``.
* ``upload.json`` – an init image as JSON (``filename`` + base64 ``data``; Datasette 0.65 has no
  multipart parser), size-capped before decoding, stored once per content by ``assets.store_asset``.
* ``/-/sinkin/models/refresh.json`` – ``models.refresh_models`` for the chosen provider.
* ``/-/sinkin/assets/<id>`` – an uploaded image, for the form's preview.

Every POST goes through :func:`security.write_request`: refused (403) before its body is read
unless it is a same-origin JSON POST with the CSRF token, and capped in size.
"""

import base64
import binascii
import json
import re
import sqlite3
import threading

from datasette import Response
from datasette.utils.asgi import BadRequest

from .appdb import error, json_script, media_file, ok, rows, url_id, with_db
from .formspec import (
    GENERAL,
    FormError,
    form_options,
    form_to_spec,
    problems_by_field,
    spec_to_form,
    spec_yaml,
)
from .security import write_request

_REQUEST_KEY = re.compile(r"^[A-Za-z0-9-]{8,100}$")
_create_lock = threading.Lock()


def routes():
    return [
        (r"^/-/sinkin/new$", form_page),
        (r"^/-/sinkin/new/check\.json$", check_view),
        (r"^/-/sinkin/new/create\.json$", create_view),
        (r"^/-/sinkin/new/upload\.json$", upload_view),
        (r"^/-/sinkin/models/refresh\.json$", refresh_models_view),
        (r"^/-/sinkin/assets/(?P<asset_id>\d+)$", asset_view),
    ]


def upload_limit():
    """The largest upload body accepted: the image cap, as base64 (4/3 larger), plus the JSON."""
    from sinkin_pipeline.spec import MAX_INIT_IMAGE_BYTES

    return MAX_INIT_IMAGE_BYTES * 4 // 3 + 64 * 1024


# -- the page ---------------------------------------------------------------------------------


def _page_data(db, from_run, suggested=False, image_id=None, normalize=None):
    from sinkin_pipeline.models import catalogue_of, known_models, list_models
    from sinkin_pipeline.providers import get_providers

    last = db.execute("select provider from runs order by id desc limit 1").fetchone()
    models = known_models(db, last[0] if last else "simulator")  # an empty cache is filled on first use
    providers = sorted(get_providers())
    by_catalogue: dict = {}
    for m in list_models(db):  # every provider's cached lists: the menus follow the chosen provider
        lists = by_catalogue.setdefault(m["catalogue"], {"models": [], "loras": []})
        lists.setdefault(m["kind"] + "s", []).append(m)  # models, loras, samplers...
    data = {
        "providers": providers,
        "catalogues": {name: catalogue_of(name) for name in providers},
        "models_by_catalogue": by_catalogue,
        "models": [m for m in models if m["kind"] == "model"],
        "loras": [m for m in models if m["kind"] == "lora"],
        "form": None,
        "from_run": None,
    }
    if from_run is not None:
        found = rows(db, "select id, name, provider, spec from runs where id = ?", [from_run])
        if found:
            run = found[0]
            try:
                spec = json.loads(run["spec"] or "{}")
            except ValueError:
                spec = {}
            assets = [
                r["init_asset_id"]
                for r in rows(
                    db,
                    """
                select distinct init_asset_id from configs where run_id = ? and init_asset_id is not null
                order by init_asset_id""",
                    [from_run],
                )
            ]
            if suggested:  # "Queue this" on the insights page: the suggested next run
                from sinkin_pipeline.suggest import suggest

                proposal = suggest(db, from_run, normalize=normalize)
                spec, assets = proposal["spec"], proposal["init_asset_ids"]
            spec = spec if isinstance(spec, dict) else {}
            form = spec_to_form(spec, assets, _options_of(spec.get("provider") or run["provider"]))
            form.setdefault("provider", run["provider"])
            form["name"] = (
                spec["name"] if suggested else "{} (copy)".format(run["name"]) if run["name"] else ""
            )
            data["form"] = form
            data["from_run"] = {"id": run["id"], "name": run["name"]}
            data["assets"] = _assets(db, assets)
    if image_id is not None:  # "Remix" in the viewer: this one image's settings
        from sinkin_pipeline.remix import image_config, image_spec

        try:
            config = image_config(db, image_id)
        except LookupError:
            config = None
        if config is not None:
            assets = [config["init_asset_id"]] if config["init_asset_id"] else []
            spec = image_spec(config)
            data["form"] = spec_to_form(spec, assets, _options_of(spec.get("provider")))
            data["form"]["name"] = "remix of image {}".format(image_id)
            data["from_run"] = {"id": config["run_id"], "name": config["run_name"], "image": image_id}
            data["assets"] = _assets(db, assets)
    if data["form"] is None:
        data["default_provider"] = last[0] if last else "simulator"
    return data


def _assets(db, ids):
    if not ids:
        return []
    return rows(
        db,
        "select id, filename, width, height, bytes from assets where id in ({})".format(
            ",".join("?" for _ in ids)
        ),
        list(ids),
    )


def _hints(fields):
    """``{field: "1–50"}``: the allowed range shown beside each number field, from its Field."""
    hints = {}
    for name, fld in fields.items():
        if fld.kind in ("int", "float") and fld.min is not None and fld.max is not None:
            hints[name] = "{:g}–{:g}".format(fld.min, fld.max)
            if fld.multiple_of:
                hints[name] += ", multiples of {}".format(fld.multiple_of)
    return hints


async def form_page(datasette, request):
    from sinkin_pipeline.fields import FIELDS
    from sinkin_pipeline.runs import CONFIRM_CREDITS, CONFIRM_JOBS
    from sinkin_pipeline.spec import MAX_INIT_IMAGE_BYTES, MAX_RANDOM_SEEDS

    from_run = request.args.get("from")
    from_run = int(from_run) if from_run and from_run.isdigit() else None
    image = request.args.get("image")  # no database: appdb.guarded answers 503
    normalize = request.args.get("normalize") or None  # "Queue this" from normalised insights
    if normalize not in (None, "prompt"):
        raise BadRequest("normalize: expected 'prompt' (or nothing), got {!r}".format(normalize[:40]))
    data = await with_db(
        datasette,
        _page_data,
        from_run,
        request.args.get("suggest") == "1",
        int(image) if image and image.isdigit() else None,
        normalize,
    )
    if image and image.isdigit() and data["from_run"] is None:
        data["error"] = "Image {} not found: starting from an empty form.".format(image)
    elif from_run is not None and data["from_run"] is None:
        data["error"] = "Run {} not found: starting from an empty form.".format(from_run)
    data["schedulers"] = list(FIELDS["scheduler"].choices)
    data["controlnets"] = list(FIELDS["controlnet"].choices)
    # kinds, limits and defaults of every field, from sinkin_pipeline.fields: the page writes none
    data["fields"] = {k: f.as_json() for k, f in FIELDS.items()}
    data["defaults"] = {k: f.default for k, f in FIELDS.items()}
    data["limits"] = {"upload_bytes": MAX_INIT_IMAGE_BYTES, "random_seeds": MAX_RANDOM_SEEDS}
    data["provider_options"] = all_provider_options(data["providers"])
    data["confirm"] = {"jobs": CONFIRM_JOBS, "credits": CONFIRM_CREDITS}
    context = {
        "page_json": json_script(data),
        "from_run": data["from_run"],
        "data": data,
        "hints": _hints(FIELDS),
    }
    return Response.html(await datasette.render_template("new.html", context, request=request))


# -- checking and creating ------------------------------------------------------------------


def _asset_paths(db, form):
    """``{asset id (text): absolute path}`` for the uploads the form refers to."""
    from sinkin_pipeline.db import db_path_of
    from sinkin_pipeline.media import resolve_media

    ids = form.get("init_image") or []
    ids = ids if isinstance(ids, list) else [ids]
    ids = [
        int(i)
        for i in ids
        if isinstance(i, int) and not isinstance(i, bool) or isinstance(i, str) and i.isdigit()
    ]
    paths = {}
    base = db_path_of(db)
    for row in _assets_paths(db, ids):
        paths[str(row["id"])] = str(resolve_media(base, row["path"]))
    return paths


def _assets_paths(db, ids):
    if not ids:
        return []
    return rows(db, "select id, path from assets where id in ({})".format(",".join("?" for _ in ids)), ids)


def evaluate(db, form):
    """Check a form: ``(spec_dict, spec, plan, problems, cautions, models)``; problems is ``{}``
    when all is well; ``models`` is the list the ids were checked against (fetched from the
    provider when the cache is empty, not stored: :func:`_create` keeps it once a run exists). Cautions do not stop the plan (always shown) but ask for a confirmation at "Create":
    a provider that is not ready (no API key: how to set it) and model or LoRA ids that are not in
    the cached list (with the nearest known ids).

    Uses the CLI's own functions: ``check_spec`` for every value, ``make_plan`` for the counts
    and the estimate, ``Provider.check_ready`` for the provider, ``models.unknown_ids``."""
    from sinkin_pipeline.models import known_models, unknown_ids
    from sinkin_pipeline.providers import ConfigurationError, get_provider
    from sinkin_pipeline.runs import GridTooLarge, make_plan, provider_name
    from sinkin_pipeline.spec import SpecError, check_spec

    options = _options_of(form.get("provider"))
    try:
        spec_dict = form_to_spec(form, _asset_paths(db, form), options)
    except FormError as e:
        return None, None, None, e.problems, [], []
    try:
        spec = check_spec(spec_dict)
    except SpecError as e:
        shown = set(options) | set(form_options(form))
        return spec_dict, None, None, problems_by_field(e.problems, shown), [], []
    name = provider_name(spec)
    try:
        plan = make_plan(db, spec)
    except ConfigurationError as e:  # an unknown provider
        return spec_dict, spec, None, {"provider": ["provider: {}".format(e)]}, [], []
    except (GridTooLarge, ValueError) as e:  # the job ceiling (runs.max_jobs)
        return spec_dict, spec, None, {GENERAL: [str(e)]}, [], []
    cautions = []
    try:
        get_provider(name).check_ready()
    except ConfigurationError as e:
        cautions.append(
            "{}. The run can be queued now; its jobs wait until this is fixed (an "
            "environment variable such as the key reaches the server when you restart "
            "`sinkin serve` from a shell where it is set).".format(str(e).rstrip("."))
        )
    models = known_models(db, name, store=False)
    cautions.extend(unknown_ids(models, spec.values))
    return spec_dict, spec, plan, {}, cautions, models


def _options_of(provider):
    """The options the provider chosen in the form declares (``{}`` for an unknown provider: the
    spec check then names the provider)."""
    from sinkin_pipeline.providers import DEFAULT_PROVIDER, ProviderError, provider_options

    try:
        return provider_options(provider if isinstance(provider, str) and provider else DEFAULT_PROVIDER)
    except ProviderError:
        return {}


def all_provider_options(names):
    """``{provider: [Field as JSON, ...]}``: the inputs the form shows for each provider's own
    options (a provider whose declaration is broken shows none; its runs are refused by name)."""
    from sinkin_pipeline.providers import ProviderError, provider_options

    found = {}
    for name in names:
        try:
            found[name] = [fld.as_json() for fld in provider_options(name).values()]
        except ProviderError:
            found[name] = []
    return found


def _check(db, form):
    spec_dict, spec, plan, problems, cautions, _ = evaluate(db, form)
    return {
        "ok": not problems,
        "problems": problems,
        "spec": spec_dict,
        "yaml": spec_yaml(spec_dict) if spec_dict else "",
        "plan": plan.to_dict() if plan else None,
        "cautions": cautions,
    }


async def check_view(datasette, request):
    """What the form would queue, or what is wrong with it (writes nothing)."""
    data, refusal = await write_request(request)
    if refusal:
        return refusal
    form = data.get("form")
    if not isinstance(form, dict):
        return error('expected {"form": {...}}')
    return Response.json(await with_db(datasette, _check, form), default=str)


def _existing_run(db, request_key):
    row = db.execute("select id from runs where request_key = ?", [request_key]).fetchone()
    return row[0] if row else None


def _create(db, form, request_key, confirm):
    """``(status, body)``: create the run, or say why not."""
    from sinkin_pipeline.models import cache_if_empty
    from sinkin_pipeline.runs import GridTooLarge, create_run
    from sinkin_pipeline.wording import credit_text, plural

    with _create_lock:
        existing = _existing_run(db, request_key)
        if existing:
            return 200, {
                "ok": True,
                "run_id": existing,
                "existing": True,
                "message": "Run {} was already created from this form".format(existing),
            }
        spec_dict, spec, plan, problems, cautions, models = evaluate(db, form)
        if problems:
            return 400, {
                "ok": False,
                "problems": problems,
                "error": "the form has problems: nothing was queued",
            }
        if (plan.needs_confirmation() or cautions) and confirm is not True:
            reasons = list(cautions)
            if plan.needs_confirmation():
                reasons.append(
                    "This queues {} ({}, {} estimated): a large or costly grid.".format(
                        plural(plan.jobs, "job"),
                        plural(plan.images, "image"),
                        credit_text(plan.credits, estimate=True),
                    )
                )
            return 409, {
                "ok": False,
                "needs_confirmation": True,
                "plan": plan.to_dict(),
                "cautions": cautions,
                "reasons": reasons,
                "error": " ".join(reasons) + " Confirm to queue it.",
            }
        try:
            run_id = create_run(db, spec, spec_yaml=spec_yaml(spec_dict), request_key=request_key)
        except GridTooLarge as e:
            return 400, {
                "ok": False,
                "problems": {GENERAL: [str(e)]},
                "error": "the form has problems: nothing was queued",
            }
        except sqlite3.IntegrityError:
            existing = _existing_run(db, request_key)
            if existing is None:
                raise
            return 200, {
                "ok": True,
                "run_id": existing,
                "existing": True,
                "message": "Run {} was already created from this form".format(existing),
            }
        cache_if_empty(db, models)
    return 200, {
        "ok": True,
        "run_id": run_id,
        "plan": plan.to_dict(),
        "cautions": cautions,
        "message": "Run {} queued: {}, {}, {} estimated".format(
            run_id,
            plural(plan.jobs, "job"),
            plural(plan.images, "image"),
            credit_text(plan.credits, estimate=True),
        ),
    }


async def create_view(datasette, request):
    """Create the run and queue its jobs (nothing is spent yet); the page then goes to the dashboard."""
    data, refusal = await write_request(request)
    if refusal:
        return refusal
    form = data.get("form")
    key = data.get("request_key")
    if not isinstance(form, dict):
        return error('expected {"form": {...}, "request_key": ...}')
    if not isinstance(key, str) or not _REQUEST_KEY.match(key):
        return error("request_key: missing or malformed – reload the form and try again")
    status, body = await with_db(datasette, _create, form, key, data.get("confirm"))
    if body.get("ok"):
        body["redirect"] = datasette.urls.path("/-/sinkin?created={}".format(body["run_id"]))
    return Response.json(body, status=status, default=str)


# -- uploads, models, assets ------------------------------------------------------------------


def _store(db, data, filename):
    from sinkin_pipeline.assets import store_asset

    asset_id = store_asset(db, data, filename)
    return _assets(db, [asset_id])[0]


async def upload_view(datasette, request):
    """Store an init image sent as ``{"filename": ..., "data": <base64>}``."""
    from sinkin_pipeline.spec import MAX_INIT_IMAGE_BYTES, SpecError

    data, refusal = await write_request(request, limit=upload_limit())
    if refusal:
        return refusal
    filename = data.get("filename")
    encoded = data.get("data")
    if not isinstance(filename, str) or not filename.strip() or len(filename) > 255:
        return error("filename: expected the image's file name")
    if not isinstance(encoded, str) or not encoded:
        return error("data: expected the image as base64 text")
    if encoded.startswith("data:"):
        encoded = encoded.split(",", 1)[-1]
    if len(encoded) > MAX_INIT_IMAGE_BYTES * 4 // 3 + 4:
        return error("the image is larger than {} MB".format(MAX_INIT_IMAGE_BYTES // 2**20), status=413)
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return error("data: not valid base64")
    try:
        asset = await with_db(datasette, _store, raw, filename.strip())
    except SpecError as e:
        return error("; ".join(e.problems))
    asset["url"] = datasette.urls.path("/-/sinkin/assets/{}".format(asset["id"]))
    return ok({"asset": asset, "message": "Image stored"})


def _refresh(db, provider_name):
    from sinkin_pipeline.models import count_by_kind, list_models, refresh_models
    from sinkin_pipeline.providers import get_provider

    provider = get_provider(provider_name)
    provider.check_ready()
    count = refresh_models(db, provider)
    return count, count_by_kind(db, provider_name), list_models(db, provider=provider_name)


async def refresh_models_view(datasette, request):
    """Fetch the chosen provider's model list into the ``models`` cache."""
    from sinkin_pipeline.models import describe_counts
    from sinkin_pipeline.providers import ConfigurationError, ProviderError

    data, refusal = await write_request(request)
    if refusal:
        return refusal
    provider = data.get("provider")
    if not isinstance(provider, str) or not provider:
        return error("provider: choose a provider")
    try:
        count, counts, models = await with_db(datasette, _refresh, provider)
    except ConfigurationError as e:
        return error(str(e))
    except ProviderError as e:
        return error("could not fetch models: {}".format(e), status=502)
    return ok(
        {
            "count": count,
            "counts": counts,
            "models": models,
            "message": "{} cached from {}".format(describe_counts(counts), provider),
        }
    )


async def asset_view(datasette, request):
    """An uploaded init image (the form shows it as a preview)."""
    asset_id = url_id(request, "asset_id")
    found = await with_db(datasette, rows, "select path from assets where id = ?", [asset_id])
    return await media_file(
        datasette,
        found[0]["path"] if found else None,
        "asset {}".format(asset_id),
        cache="private, max-age=3600",
    )
