"""Runnable examples of the public Python API (a package, so `examples.<name>:app` imports
this directory rather than the `examples` package pysbd installs into site-packages)."""
