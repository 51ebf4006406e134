"""Monitoring: reference profiles of training data (stored with every model version), drift statistics."""
