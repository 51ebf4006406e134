"""The evaluation layer: metrics (from sklearn.metrics only), seed-to-seed spread, plots, promotion gates."""
