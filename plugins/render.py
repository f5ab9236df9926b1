"""Deterministic stand-in images, rendered locally with Pillow (used by the simulator provider and
the stand-in server, ``sinkin_pipeline.testing.standin``). Nothing here is Stable Diffusion: the point is that images are real PNGs,
always the same for the same settings, and visibly different when a setting changes:

* the prompt (and model) choose the palette,
* the seed (and the image's index in its call) chooses the composition,
* the scheduler chooses the kind of shapes,
* steps set the amount of detail (few steps = few, blurry shapes),
* CFG scale sets saturation and contrast, LCM flattens the result,
* img2img starts from the init image (a small copy, smoothly enlarged): its colours and layout stay,
  tinted by the palette and overdrawn with shapes – more of both the higher image_strength is, as
  in Stable Diffusion, where strength is how much the init image may change.
A caption strip names the main settings, so a person can check what they are looking at.
"""

import colorsys
import hashlib
import random
from io import BytesIO

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

SHAPES = {
    "DPMSolverMultistep": "circles",
    "K_EULER_ANCESTRAL": "triangles",
    "DDIM": "rectangles",
    "K_EULER": "stripes",
    "PNDM": "rings",
    "KLMS": "dots",
}
#: the longest side shapes are drawn at; the image is then resized to the requested size
DRAW_SIZE = 384
#: the SinkIn fields that drive a rendered image (the simulator and the stand-in both send exactly
#: these to :func:`render_png`; the img2img strength is added when there is an init image)
RENDER_SETTINGS = (
    "model_id",
    "prompt",
    "negative_prompt",
    "width",
    "height",
    "steps",
    "scale",
    "seed",
    "scheduler",
    "lora",
    "lcm",
)


def render_settings(payload):
    """The settings of :data:`RENDER_SETTINGS` read from a payload (missing ones are None)."""
    return {key: payload.get(key) for key in RENDER_SETTINGS}


def _digest(*parts):
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()


def palette(prompt, model_id=""):
    """Four RGB colours derived from the prompt and model."""
    d = _digest(prompt, model_id)
    base = d[0] / 255.0
    colours = []
    for i, offset in enumerate((0.0, 0.08, 0.5, 0.62)):
        hue = (base + offset + d[i + 1] / 2550.0) % 1.0
        light = 0.35 + (d[i + 5] / 255.0) * 0.35
        sat = 0.55 + (d[i + 9] / 255.0) * 0.4
        r, g, b = colorsys.hls_to_rgb(hue, light, sat)
        colours.append((int(r * 255), int(g * 255), int(b * 255)))
    return colours


def _draw_shapes(draw, rng, kind, count, w, h, colours):
    for _ in range(count):
        colour = rng.choice(colours[1:]) + (rng.randint(140, 235),)
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        size = rng.uniform(0.05, 0.28) * min(w, h)
        if kind == "circles":
            draw.ellipse([x - size, y - size, x + size, y + size], fill=colour)
        elif kind == "rings":
            draw.ellipse(
                [x - size, y - size, x + size, y + size], outline=colour, width=max(2, int(size / 5))
            )
        elif kind == "rectangles":
            draw.rectangle([x - size, y - size * 0.6, x + size, y + size * 0.6], fill=colour)
        elif kind == "triangles":
            draw.polygon([(x, y - size), (x - size, y + size * 0.8), (x + size, y + size * 0.8)], fill=colour)
        elif kind == "stripes":
            angle_dx = rng.uniform(-1, 1) * w
            draw.line([(x - angle_dx, 0), (x + angle_dx, h)], fill=colour, width=max(3, int(size / 3)))
        else:  # dots
            step = max(6, int(size / 3))
            for dx in range(-2, 3):
                for dy in range(-2, 3):
                    cx, cy = x + dx * step * 2, y + dy * step * 2
                    draw.ellipse([cx - step / 2, cy - step / 2, cx + step / 2, cy + step / 2], fill=colour)


def _caption(image, lines):
    draw = ImageDraw.Draw(image, "RGBA")
    font = ImageFont.load_default()
    line_h = 12
    height = line_h * len(lines) + 6
    draw.rectangle([0, image.height - height, image.width, image.height], fill=(0, 0, 0, 150))
    for i, text in enumerate(lines):
        draw.text((4, image.height - height + 3 + i * line_h), text, fill=(255, 255, 255, 255), font=font)


def render_image(settings, index=0, init_image=None):
    """A PIL image for ``settings`` (SinkIn field names); ``init_image`` is a PIL image or None."""
    width = int(settings.get("width") or 512)
    height = int(settings.get("height") or 768)
    prompt = str(settings.get("prompt") or "")
    seed = int(settings.get("seed") if settings.get("seed") is not None else 0)
    scheduler = settings.get("scheduler") or "DPMSolverMultistep"
    steps = int(settings.get("steps") or 30)
    scale = float(settings.get("scale") or 7.5)
    lcm = str(settings.get("lcm")).lower() == "true"
    colours = palette(
        prompt + "|" + str(settings.get("negative_prompt") or ""), settings.get("model_id") or ""
    )
    factor = DRAW_SIZE / max(width, height)
    w, h = max(16, int(width * factor)), max(16, int(height * factor))
    rng = random.Random(int.from_bytes(_digest(seed, index, settings.get("lora") or ""), "big"))

    # background: a vertical gradient between two palette colours
    top, bottom = colours[0], colours[2 if rng.random() < 0.5 else 3]
    gradient = Image.linear_gradient("L").resize((w, h))
    image = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), gradient)
    shapes = 3 + steps // 3
    if init_image is not None:  # img2img: start from the init image, change it as much as strength says
        strength = settings.get("image_strength")
        strength = 0.75 if strength is None else max(0.0, min(1.0, float(strength)))
        base = init_image.convert("RGB").resize((w, h), Image.BICUBIC)
        image = Image.blend(base, image, 0.4 * strength)
        shapes = max(1, round(shapes * strength * 0.6))
    draw = ImageDraw.Draw(image, "RGBA")
    _draw_shapes(draw, rng, SHAPES.get(scheduler, "circles"), shapes, w, h, colours)
    blur = max(0.0, (50 - steps) / 10.0)
    if blur:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    image = ImageEnhance.Color(image).enhance(0.25 + scale / 8.0)
    image = ImageEnhance.Contrast(image).enhance(0.6 + scale / 25.0)
    if lcm:
        image = image.quantize(colors=12).convert("RGB")
    image = image.resize((width, height), Image.BICUBIC)
    _caption(
        image,
        [
            "{} | seed {} #{}".format(prompt[:48], seed, index),
            "{} | {} steps | cfg {:g}{}{}".format(
                scheduler,
                steps,
                scale,
                " | lcm" if lcm else "",
                " | img2img" if init_image is not None else "",
            ),
        ],
    )
    return image


def to_png(image):
    buffer = BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def render_png(settings, index=0, init_image=None):
    """PNG bytes of :func:`render_image`."""
    return to_png(render_image(settings, index, init_image))


def upscale_png(png_bytes, factor=2.0, kind="esrgan", strength=None):
    """A really upscaled copy: ESRGAN-like (LANCZOS, sharpened) or hires-fix-like (2x, re-detailed
    more the higher the strength). Returns PNG bytes."""
    with Image.open(BytesIO(png_bytes)) as source:
        source = source.convert("RGB")
        if kind == "hires_fix":
            factor = 2.0
        size = (int(source.width * factor), int(source.height * factor))
        image = source.resize(size, Image.LANCZOS)
    if kind == "hires_fix":
        amount = 0.6 if strength is None else float(strength)
        image = image.filter(ImageFilter.UnsharpMask(radius=2, percent=int(60 + amount * 240), threshold=2))
        image = ImageEnhance.Color(image).enhance(1.0 + amount * 0.3)
    else:
        image = image.filter(ImageFilter.UnsharpMask(radius=1.5, percent=120, threshold=3))
    return to_png(image)


def tiny_copy(image_bytes, size=48):
    """A small JPEG of an init image (at most ``size`` px on its longest side, about 2 KB): enough
    for the simulator to start from it again in any process (it travels inside the image URL)."""
    with Image.open(BytesIO(image_bytes)) as im:
        im = im.convert("RGB")
        im.thumbnail((size, size), Image.LANCZOS)
        buffer = BytesIO()
        im.save(buffer, format="JPEG", quality=85)
        return buffer.getvalue()
