"""The built-in upscalers, SinkIn's two ``/api/upscale`` types: ESRGAN (``scale`` 2 to 4) and hires
fix (``strength`` 0 to 1). Their ranges are SinkIn's, from ``sinkin_pipeline.fields``. They apply to
every provider that implements ``upscale()`` without registering upscalers of its own."""

from sinkin_pipeline import UPSCALE_FIELDS, UPSCALE_TYPE_OPTIONS, Upscaler, hookimpl

DESCRIPTIONS = {"esrgan": "ESRGAN: 2x to 4x", "hires_fix": "Hires fix: re-detail at 2x"}


def sinkin_upscalers():
    return [
        Upscaler(name, [UPSCALE_FIELDS[o] for o in UPSCALE_TYPE_OPTIONS[name]], DESCRIPTIONS[name])
        for name in UPSCALE_TYPE_OPTIONS
    ]


@hookimpl
def register_upscalers(register):
    for upscaler in sinkin_upscalers():
        register(upscaler)
