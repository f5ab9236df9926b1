"""Blind mode (``?blind=SEED`` on the gallery, the viewer and the JSON they fetch): nothing the
server sends tells the settings of an image that is not scored yet — not its prompt, model,
scheduler, steps, scale, seed, LoRA, provider options, init image, its A1111 parameter line, nor
anything derived from them (the caption, the simulator's URL, the config and job ids). Once the
image is scored, everything is sent as usual. Insights, the X/Y/Z grid and the ranking table are
not in blind mode: opening them is the user's choice to see the settings."""

from typing import Any

#: what an unscored image shows in blind mode: its identity, score, the files, and its pixel size
#: (the picture itself shows its size, so hiding it would hide nothing)
KEPT = ("image_id", "run_id", "run_name", "score", "width", "height", "full_url", "upscale_url_local")


def hides(blind: int | None, image: dict[str, Any]) -> bool:
    """True when blind mode is on and ``image`` (a row or an image_info dict) is unscored."""
    return bool(blind) and image.get("score") is None


def blind_image(image: dict[str, Any]) -> dict[str, Any]:
    """The image's JSON with its settings left out (``hidden`` tells the viewer why)."""
    shown = {key: image.get(key) for key in KEPT}
    shown.update(settings=[], label="", a1111=None, init_asset_id=None, hidden=True)
    shown["varying"] = image.get("varying") or []  # the names of the run's axes, no values
    return shown


def blind_tile(image: dict[str, Any]) -> dict[str, Any]:
    """A gallery tile of an unscored image in blind mode: no caption, no prompt."""
    return {key: image.get(key) for key in ("image_id", "score", "upscaled", "downloaded")} | {
        "label": "",
        "prompt": None,
    }
