"""X/Y/Z grids of a run, as A1111's X/Y/Z plot lays them out, with scores: X values across, Y values
down, one page per Z value; a cell holds every image of its combination side by side (several
seeds, or whatever else varies), so each image of the run appears on exactly one Z page."""

from .rundata import InsightsError, RunData, sort_key
from .varying import format_value

#: images on one Z page beyond which the default axes add a Z, and a page shows only the first
PAGE_LIMIT = 4000


def default_axes(data: RunData):
    """X and Y default to the two varying settings with the most values (X the larger); seeds
    come last, so that a cell holds several seeds side by side. A Z (the next setting) only when
    one page would hold more than PAGE_LIMIT images."""
    counts = {a: len({cfg[a] for cfg in data.configs.values()}) for a in data.axes}
    ranked = sorted(data.axes, key=lambda a: (a == "seed", -counts[a]))
    z = ranked[2] if len(ranked) > 2 and data.image_count > PAGE_LIMIT else None
    return (ranked[0] if ranked else None), (ranked[1] if len(ranked) > 1 else None), z


def check_axes(data: RunData, x, y, z):
    chosen = [a for a in (x, y, z) if a]
    for axis in chosen:
        if axis not in data.axes:
            raise InsightsError(
                "{!r} is not a setting that varies in this run (choose from: {})".format(
                    axis, ", ".join(data.axes) or "none"
                )
            )
    if len(set(chosen)) != len(chosen):
        raise InsightsError("X, Y and Z must be different settings")
    if z and not y or y and not x:
        raise InsightsError("choose X before Y, and Y before Z")


def grid(data: RunData, x=None, y=None, z=None, z_page=1):
    """The grid of one Z page: ``{"x", "y", "z", "x_values", "y_values", "z_values", "z_page",
    "z_pages", "z_value", "rest", "per_cell", "total", "shown", "rows": [[[image, ...] per x value]
    per y value]}`` where an image is ``{"id", "score", "caption"}`` (its settings outside X, Y and
    Z); a page shows at most PAGE_LIMIT images (``shown`` of ``total``)."""
    check_axes(data, x, y, z)
    none = object()

    def values(axis):
        return sorted({cfg[axis] for cfg in data.configs.values()}, key=sort_key) if axis else [none]

    xs, ys, zs = values(x), values(y), values(z)
    try:
        z_page = int(z_page)
    except (TypeError, ValueError):
        raise InsightsError("z page must be a whole number")
    if not 1 <= z_page <= len(zs):
        raise InsightsError("z page {} does not exist (1 to {})".format(z_page, len(zs)))
    z_value = zs[z_page - 1]
    rest = [a for a in data.axes if a not in (x, y, z)]
    xi = {v: i for i, v in enumerate(xs)}
    yi = {v: i for i, v in enumerate(ys)}
    cells = [[[] for _ in xs] for _ in ys]
    for cid, cfg in data.configs.items():
        if z and cfg[z] != z_value:
            continue
        images = data.images.get(cid)
        if not images:
            continue
        key = tuple(sort_key(cfg[a]) for a in rest)
        caption = " · ".join("{} {}".format(a, format_value(a, cfg[a])) for a in rest)
        cell = cells[yi[cfg[y]] if y else 0][xi[cfg[x]] if x else 0]
        for image_id, index, score in images:
            cell.append((key, index, image_id, {"id": image_id, "score": score, "caption": caption}))
    per_cell = total = shown = 0
    for row in cells:
        for i, cell in enumerate(row):
            cell.sort(key=lambda item: item[:3])
            total += len(cell)
            keep = max(0, min(len(cell), PAGE_LIMIT - shown))
            row[i] = [item[3] for item in cell[:keep]]
            shown += keep
            per_cell = max(per_cell, len(row[i]))
    return {
        "x": x,
        "y": y,
        "z": z,
        "x_values": [] if not x else xs,
        "y_values": [] if not y else ys,
        "z_values": [] if not z else zs,
        "z_page": z_page,
        "z_pages": len(zs),
        "z_value": None if not z else z_value,
        "rest": rest,
        "per_cell": per_cell,
        "rows": cells,
        "total": total,
        "shown": shown,
    }
