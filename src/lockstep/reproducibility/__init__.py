"""Reproducibility assessment: ``verify`` rebuilds a model and compares it stage by stage, ``parity``
runs the same rows through every prediction path, ``check`` holds the ML regression gates for CI, and the
environment is compared, locked and packaged."""
