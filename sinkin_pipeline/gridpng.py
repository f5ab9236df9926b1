"""One PNG of an X/Y/Z grid page (the picture people share, as A1111's grid is), drawn with Pillow
from the stored thumbnails: axis labels on the top and left edges, a score badge on each image,
the run and the Z value in a title line. Axis names and values also go into PNG text chunks."""

from io import BytesIO

from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from .varying import format_value

MAX_TILE, MIN_TILE = 128, 32
MAX_WIDTH = 4096
GAP = 4  # between images of a cell
CELL_PAD = 8  # between cells
LABEL_W = 170  # the Y labels column
TITLE_H = 30  # the title line
HEAD_H = 34  # the X labels row
BACKGROUND, INK, MUTED = (255, 255, 255), (17, 20, 24), (120, 126, 136)


def tile_size(columns):
    """The image size: 128 px, smaller when the grid would be wider than MAX_WIDTH."""
    if columns <= 0:
        return MAX_TILE
    fit = (MAX_WIDTH - LABEL_W) // columns - GAP
    return max(MIN_TILE, min(MAX_TILE, fit))


def layout(grid):
    """``(tile, cell_w, cell_h, width, height)`` of the picture of ``grid`` (see grid.grid)."""
    nx = max(1, len(grid["x_values"]))
    ny = max(1, len(grid["y_values"]))
    per_cell = max(1, grid["per_cell"])
    tile = tile_size(nx * per_cell)
    cell_w = per_cell * (tile + GAP) - GAP + CELL_PAD
    cell_h = tile + CELL_PAD
    return tile, cell_w, cell_h, LABEL_W + nx * cell_w, TITLE_H + HEAD_H + ny * cell_h


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw, text, font, width):
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def render(grid, thumbnails, title):
    """PNG bytes of ``grid``; ``thumbnails`` maps image id → JPEG bytes (missing: a grey tile)."""
    tile, cell_w, cell_h, width, height = layout(grid)
    picture = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(picture)
    font, small, badge_font = _font(14), _font(12), _font(max(10, tile // 8))
    draw.text((8, 7), _fit(draw, title, font, width - 16), font=font, fill=INK)
    x_axis, y_axis = grid["x"], grid["y"]
    if y_axis or x_axis:
        corner = "{} (down) / {} (across)".format(y_axis, x_axis) if y_axis else "{} (across)".format(x_axis)
        draw.text((8, TITLE_H + 9), _fit(draw, corner, small, LABEL_W - 12), font=small, fill=MUTED)
    for i, value in enumerate(grid["x_values"]):
        left = LABEL_W + i * cell_w
        text = _fit(draw, format_value(x_axis, value), font, cell_w - CELL_PAD)
        draw.text((left, TITLE_H + 8), text, font=font, fill=INK)
    for j, value in enumerate(grid["y_values"]):
        top = TITLE_H + HEAD_H + j * cell_h
        text = _fit(draw, format_value(y_axis, value), font, LABEL_W - 12)
        draw.text((8, top + tile // 2 - 8), text, font=font, fill=INK)
    for j, row in enumerate(grid["rows"]):
        for i, cell in enumerate(row):
            left0 = LABEL_W + i * cell_w
            top = TITLE_H + HEAD_H + j * cell_h
            for k, image in enumerate(cell):
                left = left0 + k * (tile + GAP)
                _paste(picture, thumbnails.get(image["id"]), left, top, tile)
                _badge(draw, image["score"], left, top, badge_font)
    info = PngInfo()
    info.add_itxt("Title", title)
    for name, axis, values in (("X", x_axis, grid["x_values"]), ("Y", y_axis, grid["y_values"])):
        if axis:
            info.add_itxt(name, "{}: {}".format(axis, ", ".join(format_value(axis, v) for v in values)))
    if grid["z"]:
        info.add_itxt("Z", "{}: {}".format(grid["z"], format_value(grid["z"], grid["z_value"])))
    out = BytesIO()
    picture.save(out, format="PNG", pnginfo=info, compress_level=3)
    return out.getvalue()


def _paste(picture, data, left, top, tile):
    if not data:
        ImageDraw.Draw(picture).rectangle([left, top, left + tile - 1, top + tile - 1], fill=(200, 204, 210))
        return
    with Image.open(BytesIO(data)) as im:
        im.draft("RGB", (tile, tile))
        im = im.convert("RGB")
        im.thumbnail((tile, tile))
        picture.paste(im, (left + (tile - im.width) // 2, top + (tile - im.height) // 2))


def _badge(draw, score, left, top, font):
    text = "-" if score is None else str(score)  # the default font has no en dash
    box = draw.textbbox((0, 0), text, font=font)
    w, h = box[2] - box[0] + 8, box[3] - box[1] + 6
    draw.rounded_rectangle(
        [left + 3, top + 3, left + 3 + w, top + 3 + h],
        radius=4,
        fill=(31, 35, 40) if score is not None else (120, 126, 136),
    )
    draw.text((left + 7 - box[0], top + 6 - box[1]), text, font=font, fill=(255, 255, 255))


def thumbnails(db, grid):
    """Image id → thumbnail JPEG bytes for every image of ``grid``."""
    ids = [image["id"] for row in grid["rows"] for cell in row for image in cell]
    found = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for image_id, data in db.execute(
            "select id, thumbnail from images where id in ({})".format(",".join("?" for _ in chunk)), chunk
        ):
            found[image_id] = data
    return found
