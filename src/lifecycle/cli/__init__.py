"""The ``lifecycle`` command: the only package that imports the CLI library."""
