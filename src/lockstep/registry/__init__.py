"""MLflow tracking and model registry, embedded in the store: the only code that talks to MLflow.

The tracking database is SQLite at ``<store>/mlflow.db``; artifacts (runs'
plots and tables, logged models) are under ``<store>/mlartifacts/``; nothing
is written to ``./mlruns``. The registry hands out bytes, tables and loaded
objects, never paths into its folders.
"""
