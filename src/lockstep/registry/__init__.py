"""MLflow tracking and model registry, embedded in the store: the only code that talks to MLflow.

The tracking database is SQLite at ``<store>/mlflow.db``; artifacts (runs'
plots and tables, logged models) are under ``<store>/mlartifacts/``; nothing
is written to ``./mlruns``. ``import mlflow`` is slow (about 1.5 s), so it
happens inside the functions that need it.
"""

from lockstep.registry.refs import ModelRef, parse_model_ref

__all__ = ["ModelRef", "parse_model_ref"]
