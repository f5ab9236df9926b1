"""The built-in upscalers: ESRGAN (scale 2 to 4) and hires fix (strength 0 to 1)."""
from sinkin_pipeline import hookimpl
from sinkin_pipeline.upscaling import default_upscalers


@hookimpl
def register_upscalers(register):
    for upscaler in default_upscalers():
        register(upscaler)
