"""The run form's values ⇄ an experiment spec dict, and spec problems keyed by form field.

The form only *translates*: the spec dict it builds is checked by ``spec.check_spec`` and planned
by ``runs.make_plan``, exactly as a YAML file given to ``sinkin run`` is. Form fields are named
after the spec keys they fill, so a problem line ``"steps: 0 – out of range..."`` belongs to the
form field ``steps``.

Form values (JSON sent by the page; text lists may also be given as JSON lists):

* ``name``, ``provider``, ``version``: text
* ``prompt``, ``negative_prompt``: one per line
* ``model_id``, ``lora``: ids separated by commas, spaces or new lines (or a list)
* ``scheduler``, ``controlnet``: lists of choices
* ``steps``, ``scale``, ``width``, ``height``, ``num_images``, ``lora_scale``,
  ``image_strength``: numbers separated by commas or spaces
* ``seed_mode``: ``"random"`` (with ``random_seeds``: K) or ``"list"`` (with ``seed``)
* ``use_default_neg``, ``lcm``: ``"true"``, ``"false"`` or ``"both"``
* ``init_image``: a list of stored asset ids (uploads); ``fallback``: true/false
* ``options``: ``{name: value}`` for the options the chosen provider declares (``Provider.options``,
  e.g. a1111's ``clip_skip``), each read by its Field's kind: numbers separated by commas or spaces,
  text values separated by commas or new lines (a sampler name may hold spaces), choices as a list,
  booleans as ``"true"``, ``"false"`` or ``"both"``. They become top-level spec keys, checked by
  ``check_spec`` against the provider's declaration exactly as in a spec file.
"""

import re

import yaml

from sinkin_pipeline.fields import FIELDS, SPEC_ONLY_KEYS

#: img2img-only SinkIn fields (they follow init_image)
IMG2IMG_KEYS = tuple(k for k, f in FIELDS.items() if f.img2img_only)
#: spec keys in the order the YAML shows them: derived from sinkin_pipeline.fields
ORDER = (
    ("name", "provider")
    + tuple(k for k, f in FIELDS.items() if not f.img2img_only)
    + ("init_image",)
    + IMG2IMG_KEYS
    + ("fallback",)
)
#: how the form presents a field: ids and prompt lines are text fields the form splits its own way
ID_KEYS = ("model_id", "lora")
LINE_KEYS = ("prompt", "negative_prompt")
NUMBER_KEYS = tuple(k for k, f in FIELDS.items() if f.kind in ("int", "float") and k != "seed")
CHOICE_KEYS = tuple(k for k, f in FIELDS.items() if f.kind == "choice")
BOOL_KEYS = tuple(k for k, f in FIELDS.items() if f.kind == "bool")
#: problems that belong to no single field are listed under this key
GENERAL = "_general"
_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class FormError(Exception):
    """Problems found while translating the form, keyed like :func:`problems_by_field`."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__("; ".join(p for ps in problems.values() for p in ps))


def _text(value):
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def number(token):
    """``"20"`` → 20, ``"7.5"`` → 7.5; anything else is returned as given for check_spec to report."""
    if _INT.match(token):
        return int(token)
    if _FLOAT.match(token):
        return float(token)
    return token


def split_tokens(value, numbers=False):
    """Items of a list field: a JSON list, or text separated by commas, spaces or new lines."""
    if isinstance(value, list):
        items = [v.strip() if isinstance(v, str) else v for v in value]
    else:
        items = re.split(r"[\s,;]+", _text(value))
    items = [v for v in items if v != "" and v is not None]
    if numbers:
        items = [number(v) if isinstance(v, str) else v for v in items]
    return items


def split_lines(value):
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [line.strip() for line in _text(value).splitlines() if line.strip()]


def _one_or_many(items):
    return items[0] if len(items) == 1 else items


def _bool_choice(value, key):
    text = _text(value).strip().lower()
    if value is True or text in ("true", "on", "yes", "1"):
        return True
    if value is False or text in ("false", "off", "no", "0"):
        return False
    if text == "both":
        return [True, False]
    raise FormError({key: ["{}: {!r} – expected true, false or both".format(key, value)]})


def _option_values(fld, value, key):
    """One provider option's form value as a spec value (a scalar or a list), or None when empty."""
    kind = fld.kind if fld is not None else "str"
    if kind == "bool":
        if value in (None, "", []):
            return None
        return _bool_choice(value, key)
    if kind in ("int", "float"):
        items = split_tokens(value, numbers=True)
    elif isinstance(value, list):
        items = [v.strip() if isinstance(v, str) else v for v in value]
        items = [v for v in items if v not in ("", None)]
    else:  # text and choices: commas or new lines separate values (names may hold spaces)
        items = [v.strip() for v in re.split(r"[,\n]+", _text(value)) if v.strip()]
    return _one_or_many(items) if items else None


def form_options(form):
    """The provider options the form sends (``form["options"]``): ``{name: value}``; FormError
    when it is not a mapping of names."""
    given = form.get("options")
    if given in (None, ""):
        return {}
    if not isinstance(given, dict) or not all(isinstance(k, str) and k for k in given):
        raise FormError({GENERAL: ["options: expected {name: value} for the provider's own options"]})
    return given


def form_to_spec(form, asset_paths=None, options=None):
    """The spec dict a filled-in form stands for (nothing is checked beyond the form's shape).

    ``asset_paths`` maps uploaded asset ids to their stored files (the spec's ``init_image``);
    an id missing from it is a problem for the ``init_image`` field. ``options`` are the Fields
    the chosen provider declares (``providers.provider_options``): how the form's
    ``options`` values are read; a name it does not declare is passed on as text, for
    ``check_spec`` to refuse as an unknown key."""
    asset_paths = asset_paths or {}
    options = options or {}
    problems = {}
    spec = {}
    for key in ("name", "provider", "version"):
        text = _text(form.get(key)).strip()
        if text:
            spec[key] = text
    for key in ID_KEYS:
        items = split_tokens(form.get(key))
        if items:
            spec[key] = _one_or_many(items)
    for key in LINE_KEYS:
        items = split_lines(form.get(key))
        if items:
            spec[key] = _one_or_many(items)
    for key in ("scheduler",):
        items = split_tokens(form.get(key))
        if items:
            spec[key] = _one_or_many(items)
    for key in NUMBER_KEYS:
        if key in IMG2IMG_KEYS or key == "lora_scale" and "lora" not in spec:
            continue
        items = split_tokens(form.get(key), numbers=True)
        if items:
            spec[key] = _one_or_many(items)
    for key in BOOL_KEYS:
        if form.get(key) not in (None, ""):
            try:
                spec[key] = _bool_choice(form.get(key), key)
            except FormError as e:
                problems.update(e.problems)
    try:
        given_options = form_options(form)
    except FormError as e:
        problems.update(e.problems)
        given_options = {}
    extra = {}
    for key, value in given_options.items():
        if key in FIELDS or key in SPEC_ONLY_KEYS:
            problems[key] = ["{}: not a provider option (a field of the form)".format(key)]
            continue
        try:
            value = _option_values(options.get(key), value, key)
        except FormError as e:
            problems.update(e.problems)
            continue
        if value is not None:
            extra[key] = value
    mode = _text(form.get("seed_mode") or "list").strip()
    if mode == "random":
        k = split_tokens(form.get("random_seeds"), numbers=True)
        spec["seed"] = {"random": k[0] if len(k) == 1 else _text(form.get("random_seeds"))}
    elif mode == "list":
        items = split_tokens(form.get("seed"), numbers=True)
        if items:
            spec["seed"] = _one_or_many(items)
    else:
        problems["seed"] = ["seed: choose a list of seeds or K random seeds"]
    assets = form.get("init_image") or []
    if not isinstance(assets, list):
        assets = [assets]
    paths = []
    for asset_id in assets:
        path = asset_paths.get(str(asset_id))
        if path is None:
            problems.setdefault("init_image", []).append(
                "init_image: upload {!r} not found – upload the image again".format(asset_id)
            )
        else:
            paths.append(path)
    if paths:
        spec["init_image"] = _one_or_many(paths)
        items = split_tokens(form.get("image_strength"), numbers=True)
        if items:
            spec["image_strength"] = _one_or_many(items)
        items = split_tokens(form.get("controlnet"))
        if items:
            spec["controlnet"] = _one_or_many(items)
    if "fallback" in form and form["fallback"] is not None:
        if not isinstance(form["fallback"], bool):
            problems["fallback"] = ["fallback: {!r} – expected true or false".format(form["fallback"])]
        elif form["fallback"] is False:
            spec["fallback"] = False
    if problems:
        raise FormError(problems)
    ordered = {key: spec[key] for key in ORDER[: ORDER.index("init_image")] if key in spec}
    ordered.update(extra)  # the provider's options after SinkIn's fields, before img2img
    ordered.update({key: spec[key] for key in ORDER[ORDER.index("init_image") :] if key in spec})
    return ordered


def _option_form_value(fld, value):
    values = value if isinstance(value, list) else [value]
    kind = fld.kind if fld is not None else ("bool" if all(isinstance(v, bool) for v in values) else "str")
    if kind == "bool":
        truth = {v is True or str(v).lower() in ("true", "1") for v in values}
        return "both" if len(truth) > 1 else ("true" if truth.pop() else "false")
    if kind == "choice":
        return [str(v) for v in values]
    return ", ".join(_plain(v) for v in values)


def spec_to_form(spec, asset_ids=(), options=None):
    """Form values that stand for a stored spec (``runs.spec``): "clone with changes".

    Init images come back as the run's stored asset ids (``asset_ids``), since the spec's paths
    may be relative to a folder the server does not know. Keys that are not SinkIn fields nor
    spec keys are the provider's options (``options``: its declared Fields, for their kinds):
    they come back under ``form["options"]``."""
    options = options or {}
    form = {"seed_mode": "list", "seed": "", "random_seeds": 1}
    extra = {
        key: _option_form_value(options.get(key), value)
        for key, value in spec.items()
        if key not in FIELDS and key not in SPEC_ONLY_KEYS and value is not None
    }
    if extra:
        form["options"] = extra
    for key in ("name", "provider", "version"):
        if spec.get(key) is not None:
            form[key] = str(spec[key])
    for key in ID_KEYS + NUMBER_KEYS:
        if spec.get(key) is not None:
            values = spec[key] if isinstance(spec[key], list) else [spec[key]]
            form[key] = ", ".join(_plain(v) for v in values)
    for key in LINE_KEYS:
        if spec.get(key) is not None:
            values = spec[key] if isinstance(spec[key], list) else [spec[key]]
            form[key] = "\n".join(str(v) for v in values)
    for key in CHOICE_KEYS:
        if spec.get(key) is not None:
            form[key] = [str(v) for v in (spec[key] if isinstance(spec[key], list) else [spec[key]])]
    for key in BOOL_KEYS:
        if spec.get(key) is not None:
            values = spec[key] if isinstance(spec[key], list) else [spec[key]]
            truth = {str(v).lower() in ("true", "1") for v in values}
            form[key] = "both" if len(truth) > 1 else ("true" if truth.pop() else "false")
    seed = spec.get("seed")
    if isinstance(seed, dict):
        form["seed_mode"] = "random"
        form["random_seeds"] = seed.get("random", 1)
    elif seed is not None:
        form["seed"] = ", ".join(_plain(v) for v in (seed if isinstance(seed, list) else [seed]))
    else:
        form["seed_mode"] = "random"
    form["init_image"] = [int(a) for a in asset_ids]
    form["fallback"] = spec.get("fallback", True) is not False
    return form


def _plain(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def problems_by_field(problems, options=()):
    """``{"steps": ["steps: 0 – ..."], ...}`` from SpecError.problems (lines start with ``key: ``);
    ``options``: the provider option names the form shows (their problems go next to them)."""
    known = set(FIELDS) | set(SPEC_ONLY_KEYS) | set(options)
    grouped = {}
    for line in problems:
        key = line.split(":", 1)[0].strip() if ":" in line else ""
        grouped.setdefault(key if key in known else GENERAL, []).append(line)
    return grouped


def spec_yaml(spec):
    """The spec as YAML that ``sinkin run`` accepts (prompt lists in block style, others inline)."""
    parts = ["# Repeat this run from the command line: save as spec.yml, then `sinkin run spec.yml`\n"]
    for key, value in spec.items():
        if isinstance(value, (list, dict)) and key not in LINE_KEYS and key != "init_image":
            parts.append(
                "{}: {}\n".format(
                    key,
                    yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1000).strip(),
                )
            )
        else:
            parts.append(
                yaml.safe_dump(
                    {key: value}, sort_keys=False, allow_unicode=True, width=1000, default_flow_style=False
                )
            )
    return "".join(parts)
