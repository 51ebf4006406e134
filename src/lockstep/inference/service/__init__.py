"""The HTTP prediction service: FastAPI on uvicorn.

The model is loaded in the app's lifespan (checked against its registered
fingerprint; a model that does not match is refused and the service does
not start). Endpoints:

``POST /predict``
    One record (a JSON object) or a list of records (a JSON array, at most
    ``max_batch``). The answer: predictions, class probabilities, the model's
    name, version and fingerprint, and a request id (also the
    ``X-Request-ID`` header). The response is sent only once the request's
    audit record is durable.
``POST /feedback``
    The ground truth of an earlier prediction, for live quality.
``GET /health``, ``GET /ready``, ``GET /model``, ``GET /metrics``
    Liveness, readiness (model loaded, audit log writable), the model's
    identity, lineage, input schema and metrics, and Prometheus metrics.
``POST /admin/reload``
    Switch to a model version (default: the configured reference, for
    example after the champion alias moved) without dropping requests: each
    request uses the model it started with.

With a token configured, every endpoint but ``/health`` answers 401 without
``Authorization: Bearer <token>``. Oversized bodies and batches get 413,
invalid records 422 naming each field and rule; nothing a client sends is
answered with a 500.

The modules: :mod:`.settings` (what the service needs), :mod:`.loading`
(the model to serve, from the registry or a bundle), :mod:`.state` (one
process's model, audit recorder and metrics), :mod:`.routes` (the
endpoints), :mod:`.predict` (``/predict``, answered ahead of the router),
:mod:`.asgi`, :mod:`.middleware` (ids, limits, authentication, metrics),
:mod:`.feedback`, :mod:`.metrics`, :mod:`.openapi` and :mod:`.app` (the
factory).
"""

from lockstep.inference.service.app import create_app, create_app_from_env
from lockstep.inference.service.loading import ServingModel, check_audit_writable, load_serving_model
from lockstep.inference.service.settings import ServeSettings

__all__ = ["ServeSettings", "ServingModel", "check_audit_writable", "create_app", "create_app_from_env",
           "load_serving_model"]
