"""Where the heavy work runs: in lockstep's process, or on a Dask cluster (``[compute]``, ``--compute``)."""

from lockstep.compute.cluster import Compute, ProjectCode, compute_session, lost_worker, reach

__all__ = ["Compute", "ProjectCode", "compute_session", "lost_worker", "reach"]
