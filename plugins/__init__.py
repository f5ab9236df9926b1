"""SinkIn Lab's built-in pipeline plugins (installed as ``sinkin_plugins``), each registered
through the ``sinkin_pipeline`` entry-point group exactly as a third-party plugin is."""
