"""The SinkIn Lab Datasette plugin (installed as ``datasette_sinkin``)."""
