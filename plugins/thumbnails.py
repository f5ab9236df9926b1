"""Thumbnails: a small JPEG (JFIF) blob per image, under 30 KB, so datasette-render-images shows it
inline in the ranking table and the gallery loads fast. Made before the image's row is written
(the ``image_thumbnail`` hook) and stored in the same transaction."""

from io import BytesIO

from PIL import Image

from sinkin_pipeline import hookimpl

MAX_SIDE = 256
MAX_BYTES = 30 * 1024


def make_thumbnail(path, max_side=MAX_SIDE, max_bytes=MAX_BYTES):
    """JPEG bytes with a JFIF marker, at most ``max_side`` px on the long side and ``max_bytes``."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side), Image.LANCZOS)
        for quality in (82, 70, 60, 50, 40, 30, 20):
            buffer = BytesIO()
            im.save(buffer, format="JPEG", quality=quality, optimize=True)
            data = buffer.getvalue()
            if len(data) <= max_bytes:
                return data
            if quality == 20:
                im.thumbnail((im.width * 3 // 4, im.height * 3 // 4))
        return data


@hookimpl
def image_thumbnail(path):
    return make_thumbnail(path)
