"""Test and benchmark helpers, outside the product's import path: nothing in ``sinkin_pipeline``
imports this package. ``standin`` is a local stand-in of SinkIn's API on 127.0.0.1."""
