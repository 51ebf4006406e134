"""Where the heavy work runs: in lockstep's process, or on a Dask cluster (``[compute]``, ``--compute``)."""

from lockstep.compute.cluster import Compute, ProjectCode, compute_session, lost_worker, reach
from lockstep.compute.shipping import Shipped, received, ship

__all__ = ["Compute", "ProjectCode", "Shipped", "compute_session", "lost_worker", "reach", "received", "ship"]
