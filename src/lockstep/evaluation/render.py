"""A model's plots drawn as PNG in a process of their own, while training goes on logging to MLflow.

Drawing the four plots of a classifier takes about a second of one core
(importing matplotlib 0.35 s, drawing and encoding the images 0.4 to 0.5 s),
and the process that trains is busy with MLflow meanwhile (importing it,
opening its store, saving the model), on one core: the second is idle.
:func:`start` hands what the plots show (:func:`lockstep.evaluation.plots.plot_data`,
computed here) to ``python -m lockstep.evaluation.render`` through a pipe;
:meth:`Rendering.images` waits for its PNG images. The helper imports only
NumPy and matplotlib (:mod:`lockstep.evaluation.drawing`). If it cannot start
or fails, the same code draws the plots in this process instead: the images
are the same either way, and nothing depends on their bytes. On a machine
with no core to spare (a loaded CI runner, parallel trainings), the plots
are drawn in this process from the start.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from lockstep.core.machine import spare_core
from lockstep.evaluation.drawing import draw

__all__ = ["HELPER_SECONDS", "Rendering", "start"]

#: Seconds the helper may take from the moment its images are asked for; then they are drawn here.
HELPER_SECONDS = 300.0


@dataclass
class Rendering:
    """Plots being drawn: by a helper process, or here when :meth:`images` is asked and it could not."""

    data: dict[str, dict[str, Any]]
    process: subprocess.Popen[bytes] | None = None
    _writer: threading.Thread | None = field(default=None, repr=False)

    def images(self) -> dict[str, bytes]:
        """``{"plots/NAME.png": PNG bytes}``: the helper's answer, or the plots drawn here if it had none."""
        answer = self._answer()
        if answer is not None:
            return answer
        return draw(self.data)

    def _answer(self) -> dict[str, bytes] | None:
        if self.process is None:
            return None
        assert self.process.stdout is not None
        killer = threading.Timer(HELPER_SECONDS, self.process.kill)  # a helper that hangs is given up on
        killer.start()
        try:
            if self._writer is not None:
                self._writer.join()  # the data is written and the helper's stdin closed
            out = self.process.stdout.read()
            if self.process.wait() != 0:
                return None
            answer = pickle.loads(out)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError):
            return None
        finally:
            killer.cancel()
        return answer if isinstance(answer, dict) else None

    def close(self) -> None:
        """Stop the helper if it still runs (the images were not asked for), and close its pipe."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._writer is not None:
            self._writer.join(timeout=5)  # the helper is gone: its pipe refuses the rest at once
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None and not pipe.closed:
                pipe.close()


def start(data: dict[str, dict[str, Any]], *, helper: bool | None = None) -> Rendering:
    """Start drawing the plots of ``data`` (:func:`lockstep.evaluation.plots.plot_data`) in a helper process.

    Parameters
    ----------
    data : dict
    helper : bool, optional
        Whether to start the helper. By default, when the machine has a core to spare (:func:`spare_core`): on a
        busy one, the helper would take the time it saves from other work, and pay its imports every time.

    Returns
    -------
    Rendering
        Whose :meth:`~Rendering.images` gives the PNG images, and :meth:`~Rendering.close` stops the helper.
    """
    if not (spare_core() if helper is None else helper):
        return Rendering(data)
    try:
        payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        process = subprocess.Popen([sys.executable, "-m", "lockstep.evaluation.render"], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):
        return Rendering(data)
    # the data goes through the pipe from a thread: the helper reads it once Python has started
    writer = threading.Thread(target=_send, args=(process, payload), name="lockstep-plots", daemon=True)
    writer.start()
    return Rendering(data, process, writer)


def _send(process: subprocess.Popen[bytes], payload: bytes) -> None:
    assert process.stdin is not None
    try:
        process.stdin.write(payload)
        process.stdin.close()
    except (OSError, ValueError):  # the helper died, or was stopped: images() draws the plots here
        pass


def main() -> None:
    """The helper: the plots' data on stdin, ``{"plots/NAME.png": bytes}`` pickled on stdout."""
    data = pickle.load(sys.stdin.buffer)
    sys.stdout.buffer.write(pickle.dumps(draw(data), protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
