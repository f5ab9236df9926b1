"""The SinkIn request fields, their types, defaults and documented ranges: the one place every
check (spec files, the web form, the simulator, the stand-in server) reads them from."""
import difflib
from dataclasses import dataclass, field

SCHEDULERS = ("DPMSolverMultistep", "K_EULER_ANCESTRAL", "DDIM", "K_EULER", "PNDM", "KLMS")
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
        return {"name": self.name, "kind": self.kind, "default": self.default, "min": self.min,
                "max": self.max, "multiple_of": self.multiple_of, "choices": list(self.choices),
                "required": self.required, "img2img_only": self.img2img_only, "help": self.help,
                "step": self.step, "label": self.label or self.name}

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
            if isinstance(value, (int, float)) and not isinstance(value, bool) and self.name in (
                "model_id", "version", "lora"
            ):
                return str(value), None
            return None, "expected text"
        if not self.allow_empty and not value.strip():
            return None, "must not be empty"
        return value, None


FIELDS = {
    f.name: f
    for f in [
        Field("model_id", "str", required=True, allow_empty=False,
              help="a model id from `sinkin models` (e.g. 4zdwGOB for DreamShaper)"),
        Field("prompt", "str", required=True, allow_empty=False, help="what to draw"),
        Field("negative_prompt", "str", default="", help="what to avoid"),
        Field("use_default_neg", "bool", default=True, help="append SinkIn's default negative prompt"),
        Field("width", "int", default=512, min=128, max=896, multiple_of=8),
        Field("height", "int", default=768, min=128, max=896, multiple_of=8),
        Field("steps", "int", default=30, min=1, max=50),
        Field("scale", "float", default=7.5, min=1, max=20, help="guidance (CFG)"),
        Field("num_images", "int", default=1, min=1, max=4, help="images per request"),
        Field("seed", "int", default=None, min=0, max=MAX_SEED),
        Field("scheduler", "choice", default="DPMSolverMultistep", choices=SCHEDULERS),
        Field("lora", "str", default=None, help="a LoRA id from `sinkin models`"),
        Field("lora_scale", "float", default=0.75, min=0, max=2),
        Field("lcm", "bool", default=False, help="latent-consistency mode: about half the cost"),
        Field("version", "str", default=None, help="model version (default: latest)"),
        Field("image_strength", "float", default=0.75, min=0, max=1, img2img_only=True),
        Field("controlnet", "choice", default=None, choices=CONTROLNETS, img2img_only=True),
    ]
}

#: Keys a spec may hold besides the SinkIn fields.
SPEC_ONLY_KEYS = ("name", "provider", "init_image", "fallback")
#: Config columns in the order used by tables, exports and the web form.
CONFIG_FIELDS = tuple(FIELDS)

#: SinkIn's upscale options (``/api/upscale``): ESRGAN takes ``scale``, hires fix ``strength``
UPSCALE_FIELDS = {
    "scale": Field("scale", "float", default=2.0, min=2, max=4, step=0.5, help="ESRGAN factor"),
    "strength": Field("strength", "float", default=0.6, min=0, max=1, step=0.05, help="hires fix strength"),
}
#: which option each SinkIn upscale type takes
UPSCALE_TYPE_OPTIONS = {"esrgan": ("scale",), "hires_fix": ("strength",)}
UPSCALE_TYPES = tuple(UPSCALE_TYPE_OPTIONS)
UPSCALE_RANGES = {k: (float(f.min), float(f.max), f.default) for k, f in UPSCALE_FIELDS.items()}


def suggest(name, candidates):
    """A close match for an unknown name, or None."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None
