"""Built-in config expansion: the cartesian product of every list in the spec (lazily, in key order)."""

import itertools

from sinkin_pipeline import hookimpl


@hookimpl(trylast=True)
def expand_spec(spec):
    keys = list(spec)
    return (dict(zip(keys, combo)) for combo in itertools.product(*(spec[k] for k in keys)))
