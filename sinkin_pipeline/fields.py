"""The SinkIn request fields, their types, defaults and documented ranges: the one place every
check (spec files, the web form, the simulator, the stand-in server) reads them from."""

import difflib
from dataclasses import dataclass, field

SCHEDULERS = ("DPMSolverMultistep", "K_EULER_ANCESTRAL", "DDIM", "K_EULER", "PNDM", "KLMS")
#: SinkIn's schedulers under the names AUTOMATIC1111 gives its samplers (the remix parameter
#: line, and the a1111 provider plugin's mapping)
A1111_SAMPLERS = {
    "DPMSolverMultistep": "DPM++ 2M",
    "K_EULER_ANCESTRAL": "Euler a",
    "K_EULER": "Euler",
    "DDIM": "DDIM",
    "PNDM": "PLMS",
    "KLMS": "LMS",
}
CONTROLNETS = ("canny", "depth", "openpose")
MAX_SEED = 2**32 - 1


@dataclass
class Field:
    name: str
    kind: str  # "str", "int", "float", "bool", "choice"
    default: object = None
    min: float | None = None
    max: float | None = None
    multiple_of: int | None = None
    choices: tuple = ()
    required: bool = False
    img2img_only: bool = False
    allow_empty: bool = True
    help: str = ""
    extra: dict = field(default_factory=dict)
    #: the step of a number input in the web forms (None: 1 for int, "any" for float)
    step: float | None = None
    label: str = ""

    def as_json(self) -> dict:
        """The field for the web pages (kinds, limits, defaults, choices) as plain JSON."""
        return {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "multiple_of": self.multiple_of,
            "choices": list(self.choices),
            "required": self.required,
            "img2img_only": self.img2img_only,
            "help": self.help,
            "step": self.step,
            "label": self.label or self.name,
            #: a cached list that offers values (``extra={"menu": "sampler"}``: the chosen
            #: provider's cached samplers, see models.KINDS)
            "menu": self.extra.get("menu"),
        }

    def allowed(self):
        """A short description of the allowed values, for error messages."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "bool":
            return "true or false"
        if self.kind in ("int", "float"):
            text = "{} from {:g} to {:g}".format(
                "a whole number" if self.kind == "int" else "a number", self.min, self.max
            )
            if self.multiple_of:
                text += ", a multiple of {}".format(self.multiple_of)
            if self.name == "seed":
                text += " (-1 = random, not reproducible), or {random: K}"
            return text
        return "text" if self.allow_empty else "non-empty text"

    def check(self, value):
        """Return ``(normalised_value, None)`` or ``(None, problem)`` for one scalar value."""
        if self.kind == "bool":
            if isinstance(value, bool):
                return value, None
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true", None
            return None, "expected " + self.allowed()
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value, None
            if isinstance(value, str):
                close = difflib.get_close_matches(value, self.choices, n=1, cutoff=0.5)
                lowered = [c for c in self.choices if c.lower() == value.lower()]
                hint = lowered or close
                if hint:
                    return None, "expected {} (did you mean {}?)".format(self.allowed(), hint[0])
            return None, "expected " + self.allowed()
        if self.kind in ("int", "float"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                if isinstance(value, str):
                    try:
                        value = float(value) if self.kind == "float" else int(value)
                    except ValueError:
                        return None, "expected " + self.allowed()
                else:
                    return None, "expected " + self.allowed()
            if self.kind == "int":
                if isinstance(value, float):
                    if not value.is_integer():
                        return None, "expected " + self.allowed()
                    value = int(value)
            else:
                value = float(value)
                if value != value or value in (float("inf"), float("-inf")):
                    return None, "expected " + self.allowed()
            if self.name == "seed" and value == -1:
                return -1, None
            if value < self.min or value > self.max:
                return None, "out of range: expected " + self.allowed()
            if self.multiple_of and value % self.multiple_of:
                return None, "expected " + self.allowed()
            return value, None
        # str
        if not isinstance(value, str):
            if (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and self.name in ("model_id", "version", "lora")
            ):
                return str(value), None
            return None, "expected text"
        if not self.allow_empty and not value.strip():
            return None, "must not be empty"
        return value, None


FIELDS = {
    f.name: f
    for f in [
        Field(
            "model_id",
            "str",
            required=True,
            allow_empty=False,
            help="a model id from `sinkin models` (e.g. 4zdwGOB for DreamShaper)",
            extra={
                "doc": "a model id (`sinkin models`), e.g. `4zdwGOB`; ids not in the cached list are "
                "refused by `sinkin run` unless `--allow-unknown-ids`"
            },
        ),
        Field("prompt", "str", required=True, allow_empty=False, help="what to draw"),
        Field("negative_prompt", "str", default="", help="what to avoid"),
        Field("use_default_neg", "bool", default=True, help="append SinkIn's default negative prompt"),
        Field("width", "int", default=512, min=128, max=896, multiple_of=8),
        Field("height", "int", default=768, min=128, max=896, multiple_of=8),
        Field("steps", "int", default=30, min=1, max=50),
        Field("scale", "float", default=7.5, min=1, max=20, help="guidance, CFG"),
        Field(
            "num_images",
            "int",
            default=1,
            min=1,
            max=4,
            help="images per request",
            extra={
                "doc": "1 to 4 images per call (SinkIn's own default is 4: SinkIn Lab sends 1 unless "
                "told, to spend deliberately)"
            },
        ),
        Field(
            "seed",
            "int",
            default=None,
            min=0,
            max=MAX_SEED,
            extra={
                "doc_default": "one random seed, drawn and recorded",
                "doc": "0 to 4294967295; `-1` = SinkIn picks (not reproducible: `plan` warns); "
                "`{random: K}` draws K seeds",
            },
        ),
        Field("scheduler", "choice", default="DPMSolverMultistep", choices=SCHEDULERS),
        Field("lora", "str", default=None, help="a LoRA id from `sinkin models`"),
        Field("lora_scale", "float", default=0.75, min=0, max=2),
        Field("lcm", "bool", default=False, help="latent-consistency mode: about half the cost"),
        Field(
            "version",
            "str",
            default=None,
            help="model version (default: latest)",
            extra={"doc_default": "latest"},
        ),
        Field("image_strength", "float", default=0.75, min=0, max=1, img2img_only=True),
        Field("controlnet", "choice", default=None, choices=CONTROLNETS, img2img_only=True),
    ]
}

#: Keys a spec may hold besides the SinkIn fields.
SPEC_ONLY_KEYS = ("name", "provider", "init_image", "fallback")
#: Config columns in the order used by tables, exports and the web form.
CONFIG_FIELDS = tuple(FIELDS)
#: the spec-only keys for the reference (type, default, what is allowed), after the fields
SPEC_ONLY_DOCS = {
    "init_image": (
        "path",
        "none",
        "img2img: a PNG, JPEG or WebP file, relative to the spec file; at most 20 MB "
        "and 16 megapixels; stored once per content",
    ),
    "fallback": (
        "bool",
        "`true`",
        "when SinkIn refuses an img2img call, send the same settings as txt2img (the "
        "job records `fallback = 1` and the original error)",
    ),
    "name": ("text", "the creation time", "the run's name"),
    "provider": (
        "text",
        "`sinkin`",
        "`sinkin` (the real API, `SINKIN_API_KEY`), `simulator` (offline, free) or "
        "a plugin's provider (`sinkin plugins`); `--provider` overrides",
    ),
}
_SQL_TYPES = {"str": "TEXT", "choice": "TEXT", "int": "INTEGER", "bool": "INTEGER", "float": "REAL"}


def setting_columns() -> list[tuple[str, str]]:
    """``[(column, SQL type)]`` of the settings every config stores, one per SinkIn field, in
    order: what a table copying a config's settings (the ranking table) should hold."""
    return [(name, _SQL_TYPES[fld.kind]) for name, fld in FIELDS.items()]


def _doc_value(fld: Field, value) -> str:
    if value is None:
        return "none"
    if fld.kind == "bool":
        return "`{}`".format("true" if value else "false")
    if fld.kind in ("str", "choice"):
        return "`{}`".format(value) if value != "" else '`""`'
    return "{:g}".format(value)


def reference_rows() -> list[tuple[str, str, str, str]]:
    """``(key, type, default, allowed)`` for every spec key, for docs/spec.md's field reference."""
    kinds = {"str": "text", "choice": "choice", "int": "int", "float": "float", "bool": "bool"}
    rows = []
    for name, fld in FIELDS.items():
        default = "required" if fld.required else fld.extra.get("doc_default") or _doc_value(fld, fld.default)
        if "doc" in fld.extra:
            allowed = fld.extra["doc"]
        elif fld.kind == "choice":
            allowed = ", ".join("`{}`".format(c) for c in fld.choices)
        elif fld.kind in ("int", "float") and fld.min is not None and fld.max is not None:
            allowed = "{:g} to {:g}".format(fld.min, fld.max)
            if fld.multiple_of:
                allowed += ", multiples of {}".format(fld.multiple_of)
        elif fld.kind == "str" and not fld.allow_empty:
            allowed = "non-empty"
        else:
            allowed = ""
        if fld.help and "doc" not in fld.extra and fld.kind != "str":
            allowed = "{} ({})".format(allowed, fld.help) if allowed else fld.help
        elif fld.help and fld.kind == "str" and not allowed and name not in ("negative_prompt",):
            allowed = fld.help
        if fld.img2img_only:
            allowed += "; img2img only"
        rows.append((name, kinds[fld.kind], default, allowed))
    for name, (kind, default, allowed) in SPEC_ONLY_DOCS.items():
        rows.append((name, kind, default, allowed))
    return rows


#: SinkIn's upscale options (``/api/upscale``): ESRGAN takes ``scale``, hires fix ``strength``
UPSCALE_FIELDS = {
    "scale": Field("scale", "float", default=2.0, min=2, max=4, step=0.5, help="ESRGAN factor"),
    "strength": Field("strength", "float", default=0.6, min=0, max=1, step=0.05, help="hires fix strength"),
}
#: which option each SinkIn upscale type takes
UPSCALE_TYPE_OPTIONS = {"esrgan": ("scale",), "hires_fix": ("strength",)}
UPSCALE_TYPES = tuple(UPSCALE_TYPE_OPTIONS)
UPSCALE_RANGES = {k: (float(f.min or 0), float(f.max or 0), f.default) for k, f in UPSCALE_FIELDS.items()}


def suggest(name, candidates):
    """A close match for an unknown name, or None."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None
