"""Built-in config expansion: the cartesian product of every list in the spec."""
from sinkin_pipeline import hookimpl
from sinkin_pipeline.spec import cartesian


@hookimpl(trylast=True)
def expand_spec(spec):
    return cartesian(spec)
