"""What data looked like, in binned summaries: reference profiles, their statistics and the monitored score.

Pure computation shared by training (which stores a reference profile with
every model), the service (live drift on ``/metrics``) and monitoring.
"""
