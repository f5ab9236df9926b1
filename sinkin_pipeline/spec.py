"""Experiment specs: load a YAML file, check every value, draw random seeds, expand into configs.

A spec maps SinkIn field names (plus ``name``, ``provider``, ``init_image``, ``fallback`` and the
options the provider declares) to a value or a list of values; lists expand into their cartesian product, one config each.
``seed: {random: K}`` draws K concrete seeds (recorded, so every image can be reproduced);
a spec with no seed draws one per run.
"""

import itertools
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .fields import FIELDS, MAX_SEED, SPEC_ONLY_KEYS, suggest
from .plugins import load_plugins, pm

MAX_INIT_IMAGE_BYTES = 20 * 1024 * 1024
MAX_INIT_IMAGE_PIXELS = 4096 * 4096
MAX_RANDOM_SEEDS = 1000


class SpecError(Exception):
    """A spec with problems: ``problems`` holds one readable line each."""

    def __init__(self, problems, source=None):
        self.problems = list(problems)
        self.source = source
        super().__init__("\n".join(self.problems))


@dataclass
class Spec:
    """A checked spec: ``values`` maps each key to a list of normalised values."""

    values: dict
    name: str | None = None
    provider: str | None = None
    fallback: bool = True
    random_seeds: int = 0
    given: dict = field(default_factory=dict)

    def axes(self):
        """The keys that take more than one value, with their values, in spec order."""
        axes = {k: v for k, v in self.values.items() if len(v) > 1}
        if self.random_seeds > 1:
            axes["seed"] = ["random"] * self.random_seeds
        return axes

    def config_count(self):
        n = 1
        for values in self.values.values():
            n *= len(values)
        return n * max(self.random_seeds, 1)


def read_spec_file(path, provider=None):
    """Read and parse a YAML spec file (``provider`` overrides the spec's, as ``--provider`` does);
    raises SpecError with a clear message."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(["spec file not found: {}".format(path)])
    except IsADirectoryError:
        raise SpecError(["spec path is a directory, not a file: {}".format(path)])
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(["cannot read spec file {}: {}".format(path, e)])
    return parse_spec_text(text, base_dir=path.parent, source=str(path), provider=provider)


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last one
    silently, so a sweep would quietly lose values)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: PyYAML's own error follows
                    continue
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        "duplicate key {!r} (first given on line {})".format(key, first + 1),
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text):
    """Parse YAML text safely, refusing duplicate keys (yaml.YAMLError names the key and line)."""
    return yaml.load(text, Loader=_SpecLoader)


def parse_spec_text(text, base_dir=".", source="spec", provider=None):
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = " (line {}, column {})".format(mark.line + 1, mark.column + 1) if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(["invalid YAML in {}{}: {}".format(source, where, problem)])
    if not isinstance(data, dict):
        raise SpecError(
            [
                "{}: a spec must be a mapping of setting names to values, got {}".format(
                    source, type(data).__name__ if data is not None else "an empty file"
                )
            ]
        )
    return check_spec(data, base_dir=base_dir, provider=provider)


def _as_list(value):
    return list(value) if isinstance(value, list) else [value]


def check_spec(data, base_dir=".", provider=None):
    """Check a parsed spec dict; return a :class:`Spec` or raise SpecError listing every problem.
    Besides SinkIn's fields, the options the provider declares are checked (``provider``
    overrides the spec's own, as ``--provider`` does)."""
    from .providers import ProviderError, provider_options

    problems = []
    values = {}
    try:
        spec_provider = data.get("provider")
        options = provider_options(provider or (spec_provider if isinstance(spec_provider, str) else None))
    except ProviderError as e:
        problems.append("provider: {}".format(e))
        options = {}
    fields = {**FIELDS, **options}
    known = set(fields) | set(SPEC_ONLY_KEYS)
    for key in data:
        if key not in known:
            hint = suggest(str(key), known)
            problems.append(
                "{}: unknown key{}".format(
                    key,
                    " (did you mean {}?)".format(hint)
                    if hint
                    else "; allowed: " + ", ".join(list(fields) + list(SPEC_ONLY_KEYS)),
                )
            )
    name = data.get("name")
    if name is not None and not isinstance(name, (str, int, float)):
        problems.append("name: {!r} – expected text".format(name))
    provider = data.get("provider")
    if provider is not None and not isinstance(provider, str):
        problems.append("provider: {!r} – expected one provider name (text)".format(provider))
    fallback = data.get("fallback", True)
    if not isinstance(fallback, bool):
        problems.append("fallback: {!r} – expected true or false".format(fallback))
        fallback = True

    random_seeds = 0
    for key, fld in fields.items():
        if key not in data:
            if fld.required:
                problems.append("{}: missing – required ({})".format(key, fld.help or fld.allowed()))
            continue
        raw = data[key]
        if key == "seed" and isinstance(raw, dict):
            k = raw.get("random")
            if (
                set(raw) != {"random"}
                or isinstance(k, bool)
                or not isinstance(k, int)
                or not 1 <= k <= MAX_RANDOM_SEEDS
            ):
                problems.append(
                    "seed: {!r} – expected {{random: K}} with K from 1 to {}".format(raw, MAX_RANDOM_SEEDS)
                )
            else:
                random_seeds = k
            continue
        items = _as_list(raw)
        if not items:
            problems.append("{}: empty list – give at least one value".format(key))
            continue
        checked = []
        for item in items:
            if isinstance(item, (list, dict)):
                problems.append(
                    "{}: {!r} – expected {}, not a nested {}".format(
                        key, item, fld.allowed(), type(item).__name__
                    )
                )
                continue
            value, problem = fld.check(item)
            if problem:
                problems.append("{}: {!r} – {}".format(key, item, problem))
            else:
                checked.append(value)
        if checked:
            values[key] = list(dict.fromkeys(checked))  # de-duplicate, keep order

    if "init_image" in data:
        paths = _as_list(data["init_image"])
        good = []
        for p in paths:
            problem = check_init_image_path(p, base_dir)
            if problem:
                problems.append("init_image: {!r} – {}".format(p, problem))
            else:
                good.append(str((Path(base_dir) / os.path.expanduser(p)).resolve()))
        values["init_image"] = good
    else:
        for key, fld in fields.items():
            if fld.img2img_only and key in data:
                problems.append(
                    "{}: only used with img2img – add init_image (a file path) or remove {}".format(key, key)
                )
    if problems:
        raise SpecError(problems)
    return Spec(
        values=values,
        name=None if name is None else str(name),
        provider=provider,
        fallback=fallback,
        random_seeds=random_seeds,
        given=data,
    )


def check_init_image_path(p, base_dir="."):
    """None if ``p`` names a readable image within the caps, else the problem."""
    if not isinstance(p, str) or not p.strip():
        return "expected a file path"
    path = Path(base_dir) / os.path.expanduser(p)
    if not path.is_file():
        return "file not found"
    size = path.stat().st_size
    if size > MAX_INIT_IMAGE_BYTES:
        return "file is {:.1f} MB; the limit is {} MB".format(size / 1e6, MAX_INIT_IMAGE_BYTES // 2**20)
    return check_image_bytes(path.read_bytes())


def check_image_bytes(data):
    """None if ``data`` is a real PNG/JPEG/WebP within the pixel cap, else the problem."""
    from io import BytesIO

    from PIL import Image

    if len(data) > MAX_INIT_IMAGE_BYTES:
        return "file is {:.1f} MB; the limit is {} MB".format(len(data) / 1e6, MAX_INIT_IMAGE_BYTES // 2**20)
    try:
        with Image.open(BytesIO(data)) as im:
            w, h = im.size
            fmt = im.format
            if w * h > MAX_INIT_IMAGE_PIXELS:
                return "image is {}x{} pixels; the limit is {} megapixels".format(
                    w, h, MAX_INIT_IMAGE_PIXELS // 1_000_000
                )
            if fmt not in ("PNG", "JPEG", "WEBP"):
                return "unsupported image format {}; use PNG, JPEG or WebP".format(fmt)
            im.verify()
        with Image.open(BytesIO(data)) as im:
            try:
                im.load()  # decode every pixel: verify() alone lets a truncated file through
            except Exception:
                return "image is truncated or damaged: it could not be decoded"
    except Image.DecompressionBombError:
        return "image has too many pixels (decompression bomb protection)"
    except Exception:
        return "not an image (PNG, JPEG or WebP expected)"
    return None


def draw_seeds(k, rng=None):
    rng = rng or random.SystemRandom()
    return [rng.randint(0, MAX_SEED) for _ in range(k)]


def resolve_seeds(spec, rng=None):
    """Return the spec's values with concrete seeds: ``{random: K}`` (or no seed) draws them."""
    values = dict(spec.values)
    if spec.random_seeds:
        values["seed"] = draw_seeds(spec.random_seeds, rng)
    elif "seed" not in values:
        values["seed"] = draw_seeds(1, rng)
    return values


def expand(values):
    """Expand resolved values into config dicts through the ``expand_spec`` hook: an iterable,
    consumed once (the built-in expansion generates configs lazily, so a grid of 10^6 configs is
    never held in memory)."""
    load_plugins()
    configs = pm.hook.expand_spec(spec=values)
    if configs is None:
        configs = cartesian(values)
    return iter(configs)


def cartesian(values):
    """The cartesian product of ``values`` (key → list), one dict per combination, in key order,
    generated lazily."""
    keys = list(values)
    return (dict(zip(keys, combo)) for combo in itertools.product(*(values[k] for k in keys)))
