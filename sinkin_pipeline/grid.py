"""X/Y/Z grids of a run, as A1111's X/Y/Z plot lays them out, with scores: X values across, Y values
down, one page per Z value; a cell holds every image of its combination side by side (several
seeds, or whatever else varies), so each image of the run appears on exactly one Z page.

A page reads only its own images: :func:`meta` (the varying settings and their values, cached until
the run's images or configs change) gives the axes and labels, and :func:`grid` selects the Z
value's images from the lean ``image_table`` in SQL, in page order, at most PAGE_LIMIT of them."""

from dataclasses import dataclass

from .rundata import InsightsError, cached, column_sql, placeholders, settings, sort_key, typed_value
from .varying import format_value

#: images on one Z page beyond which the default axes add a Z, and a page shows only the first
PAGE_LIMIT = 4000


@dataclass
class GridMeta:
    """What a run's grid pages share: its varying settings (``axes``) with their values among its
    images, sorted (``values``), the other settings' values and the number of images."""

    run_ids: list
    runs: list
    axes: list
    constants: dict
    values: dict
    image_count: int


def meta(db, run_id) -> GridMeta:
    """The run's grid settings (cached until its images or configs change; scores do not matter).
    LookupError for a missing run."""
    return cached(db, "grid", [run_id], lambda: _meta(db, [run_id]), lambda old: old)


def _meta(db, run_ids) -> GridMeta:
    runs, axes, constants = settings(db, run_ids)
    ids = [r["id"] for r in runs]
    values = {a: set() for a in axes}
    # the values among the images, from the trigger-kept run_values; provider options from configs
    for name, value in db.execute(
        "select field, value from run_values where run_id in ({}) and images > 0 and field in ({})".format(
            placeholders(ids), placeholders(axes)
        ),
        ids + axes,
    ):
        values[name].add(typed_value(name, value))
    for name in axes:
        if not values[name]:  # a provider option, or no image yet: the values among the configs
            values[name] = {
                typed_value(name, v)
                for (v,) in db.execute(
                    "select distinct {} from configs where run_id in ({})".format(
                        column_sql(name), placeholders(ids)
                    ),
                    ids,
                )
            }
    count = db.execute(
        "select coalesce(sum(images), 0) from run_stats where run_id in ({})".format(placeholders(ids)), ids
    ).fetchone()[0]
    return GridMeta(
        run_ids=ids,
        runs=runs,
        axes=axes,
        constants=constants,
        values={a: sorted(v, key=sort_key) for a, v in values.items()},
        image_count=count,
    )


def default_axes(data: GridMeta):
    """X and Y default to the two varying settings with the most values (X the larger); seeds
    come last, so that a cell holds several seeds side by side. A Z (the next setting) only when
    one page would hold more than PAGE_LIMIT images."""
    counts = {a: len(data.values[a]) for a in data.axes}
    ranked = sorted(data.axes, key=lambda a: (a == "seed", -counts[a]))
    z = ranked[2] if len(ranked) > 2 and data.image_count > PAGE_LIMIT else None
    return (ranked[0] if ranked else None), (ranked[1] if len(ranked) > 1 else None), z


def check_axes(data: GridMeta, x, y, z):
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


def _page_images(db, data: GridMeta, x, y, z, z_value, rest):
    """``(rows, total)``: the Z page's first PAGE_LIMIT images in page order (Y, X, the other
    settings, image index, id; values sorted as :func:`sort_key` does: numbers, text, none) as
    ``(image_id, score, x value, y value, rest values)``, and how many images the page has."""
    lean = {row[1] for row in db.execute("PRAGMA table_info(image_table)")}
    used = [a for a in (x, y, z) if a] + rest
    join = "join configs c on c.id = t.config_id" if any(a not in lean for a in used) else ""

    def col(a):
        return column_sql(a, "t" if a in lean else "c")

    where, params = "t.run_id in ({})".format(placeholders(data.run_ids)), list(data.run_ids)
    if z:
        where += " and {} is ?".format(col(z))
        params.append(z_value)
    order = [a for a in (y, x) if a] + rest
    sql = """select t.image_id, t.score, {x}, {y}{rest}
             from image_table t
             join images i indexed by idx_images_job_id_image_index on i.job_id = t.job_id and i.id = t.image_id
             {join} where {where}
             order by {order}i.image_index, t.image_id limit {limit}""".format(
        x=col(x) if x else "null",
        y=col(y) if y else "null",
        rest="".join(", " + col(a) for a in rest),
        join=join,
        where=where,
        order="".join("{0} is null, {0}, ".format(col(a)) for a in order),
        limit=PAGE_LIMIT,
    )
    rows = db.execute(sql, params).fetchall()
    total = len(rows)
    if total >= PAGE_LIMIT:
        total = db.execute(
            "select count(*) from image_table t {} where {}".format(join, where), params
        ).fetchone()[0]
    return rows, total


def grid(db, data: GridMeta, x=None, y=None, z=None, z_page=1):
    """The grid of one Z page: ``{"x", "y", "z", "x_values", "y_values", "z_values", "z_page",
    "z_pages", "z_value", "rest", "per_cell", "total", "shown", "rows": [[[image, ...] per x value]
    per y value]}`` where an image is ``{"id", "score", "caption"}`` (its settings outside X, Y and
    Z); a page shows at most PAGE_LIMIT images (``shown`` of ``total``)."""
    check_axes(data, x, y, z)
    none = object()

    def values(axis):
        return data.values[axis] if axis else [none]

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
    found, total = _page_images(db, data, x, y, z, z_value, rest)
    captions: dict = {}
    for image_id, score, xv, yv, *others in found:
        key = tuple(others)
        caption = captions.get(key)
        if caption is None:
            caption = captions[key] = " · ".join(
                "{} {}".format(a, format_value(a, typed_value(a, v))) for a, v in zip(rest, others)
            )
        i = xi.get(typed_value(x, xv)) if x else 0
        j = yi.get(typed_value(y, yv)) if y else 0
        if i is None or j is None:  # a value the cached settings do not know yet: next load
            continue
        cells[j][i].append({"id": image_id, "score": score, "caption": caption})
    per_cell = max((len(cell) for row in cells for cell in row), default=0)
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
        "shown": len(found),
    }
