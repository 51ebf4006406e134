"""Where OpenLineage events go: a file (one JSON event per line) and/or an HTTP endpoint such as Marquez.

This is the only code that sends lineage events; it uses the official
client's transports (``openlineage-python``). Lineage is a record *about*
the work, never part of it: a backend that refuses, is down or is slow is
given at most ``timeout`` seconds per event, reported once as a warning on
the ``lockstep.lineage`` logger, and skipped for the rest of the command, so
that no step fails or waits for it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from openlineage.client.client import OpenLineageClient
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport
from openlineage.client.transport.transport import Transport

from lockstep.core.sections import LineageConfig

__all__ = ["LineageSink"]

log = logging.getLogger("lockstep.lineage")

#: No retries: one attempt within the timeout, then the backend is reported and left alone.
_NO_RETRY = {"total": 0, "connect": 0, "read": 0, "status": 0, "redirect": 0, "raise_on_status": False}


class LineageSink:
    """The configured lineage backends of one project.

    Parameters
    ----------
    settings : LineageConfig
        ``[lineage]``.
    project_dir : Path
        A relative ``file`` is relative to it.

    Attributes
    ----------
    failed : dict
        Backend (``file PATH`` or ``url URL``) to the reason it was given up.
    """

    def __init__(self, settings: LineageConfig, project_dir: Path) -> None:
        self.targets: dict[str, OpenLineageClient] = {}
        self.failed: dict[str, str] = {}
        self.file: Path | None = None
        if settings.file is not None:
            path = Path(settings.file).expanduser()
            self.file = path if path.is_absolute() else project_dir / path
            self.targets[f"file {self.file}"] = _client(FileTransport(FileConfig(log_file_path=str(self.file),
                                                                                 append=True)))
        if settings.url is not None:
            config = HttpConfig(url=settings.url, endpoint=settings.endpoint, timeout=float(settings.timeout),
                                retry=dict(_NO_RETRY))
            self.targets[f"url {settings.url}"] = _client(HttpTransport(config))

    def emit(self, event: Any) -> None:
        """Send one event to every backend that has not failed; a failure is a warning, never an error."""
        for name, client in self.targets.items():
            if name in self.failed:
                continue
            began = time.perf_counter()
            try:
                if self.file is not None and name.startswith("file "):
                    self.file.parent.mkdir(parents=True, exist_ok=True)
                client.emit(event)
            except Exception as exc:  # noqa: BLE001 - any failure of a lineage backend is only reported
                reason = _reason(exc)
                self.failed[name] = reason
                log.warning("lineage: could not send the %s event of %s to the %s (%s, after %.1f s); the step "
                            "goes on without it, and this command sends no more events there",
                            _event_type(event), event.job.name, name, reason, time.perf_counter() - began)


def _client(transport: Transport) -> OpenLineageClient:
    return OpenLineageClient(transport=transport)


def _event_type(event: Any) -> str:
    kind = getattr(event, "eventType", None)
    return str(getattr(kind, "value", kind))


def _reason(exc: BaseException) -> str:
    """The innermost cause, in one line (requests nests the socket error several levels deep)."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
