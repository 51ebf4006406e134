"""The feature layer: stateless transformers, the feature pipeline, the stateless (parity) check."""
