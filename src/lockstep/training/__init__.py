"""The training pipeline: a feature set version to a registered model, with its seeds, threads and search."""
