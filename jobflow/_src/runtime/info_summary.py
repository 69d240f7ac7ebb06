"""``function_config().summary(logdir, every_n_steps)``: a train job's step scalars to TensorBoard.

Every call of a train job already returns its info scalars (``loss``, ``lr``,
``loss_scale``, ``skipped``, ``global_grad_norm``, ...) packed in one small device vector
(``dispatch.PackedInfo``). An :class:`InfoRecorder` keeps the packed info of each call and
writes it once its step has finished: at each later call it writes every kept info whose
step is done (``is_ready``, no wait), and waits only when more than ``MAX_PENDING`` are
unfinished, or on ``flow.sync_default_session()``, ``flow.summary.flush_summary_writer()``
and at exit. The body needs no op and the program no extra output or host callback.

The x-axis (TensorBoard's step) is the call's index among the job's train calls, counted
from 0 and kept across checkpoints: ``step + skipped_steps`` (the optimizer step counter
plus the skipped calls before this one); it equals ``last_info["step"]`` for a job that
never skips. A ``run_steps`` call writes each of its steps. With ``every_n_steps=N``
calls whose index divides by ``N`` are written. Only process 0 of a multi-process run
writes.
"""

from __future__ import annotations

import collections
import threading

import jax
import numpy as np

from jobflow._src.ops import summary as _summary

__all__ = ["InfoRecorder", "recorder_for", "call_index"]

MAX_PENDING = 64  # unfinished calls kept before the oldest is waited for


def call_index(row: dict) -> int:
    """The call's index among the job's train calls (see the module docstring)."""
    step = int(row.get("step", 0))
    if "skipped_steps" in row:
        step += int(row["skipped_steps"]) - int(bool(row.get("skipped", False)))
    return step


class InfoRecorder:
    """Writes the info of one train job's calls to an event file in ``logdir``."""

    def __init__(self, job_name: str, logdir, every_n_steps: int = 1):
        self.job_name = job_name
        self.every = every_n_steps
        self._file = _summary.open_event_file(logdir, suffix=f".{job_name}")
        self._pending: collections.deque = collections.deque()  # (info, calls recorded before it)
        self._lock = threading.Lock()
        self._calls = 0  # steps recorded so far (host count)
        self._offset: int | None = None  # call index - host count, known once a step was read
        # start each step's device-to-host copy early on accelerators (on the CPU the values
        # are in host memory already, and the call would cost more than the read)
        self._copy_early = jax.default_backend() != "cpu"
        _summary.add_flush_hook(self.drain)

    @property
    def path(self) -> str:
        return self._file.path

    def record(self, info) -> None:
        """Keeps a call's ``PackedInfo``; writes the kept ones whose steps have finished.

        With ``every_n_steps > 1``, once one step has been read the indices of the next
        calls are known on the host (each call adds its number of steps), and a call none
        of whose steps is written is not kept (its info is never read)."""
        first, steps = self._calls, info.num_steps
        self._calls += steps
        if self._offset is not None and not _writes_any(first + self._offset, steps, self.every):
            return
        if self._copy_early:
            info.copy_to_host_async()
        with self._lock:
            self._pending.append((info, first))
            self._write_ready(wait_all=False)

    def drain(self) -> None:
        """Writes every kept info (waits for their steps)."""
        with self._lock:
            self._write_ready(wait_all=True)

    def close(self) -> None:
        """Writes what is kept and closes the file (the job's session ended)."""
        self.drain()
        _summary.remove_flush_hook(self.drain)
        self._file.close()

    def _write_ready(self, wait_all: bool) -> None:
        pending = self._pending
        while len(pending) > MAX_PENDING:
            self._write(pending.popleft())  # waits for the oldest
        while pending and (wait_all or pending[0][0].is_ready()):
            self._write(pending.popleft())

    def _write(self, item) -> None:
        info, first = item
        rows = info.rows()
        if rows:  # the host count's offset (a checkpoint restore moves it)
            self._offset = call_index(rows[0]) - first
        for row in rows:
            index = call_index(row)
            if index % self.every == 0:
                values = {
                    f"{self.job_name}/{k}": v for k, v in row.items() if k != "step" and np.size(v) == 1
                }
                self._file.scalars(index, values)


def _writes_any(first: int, steps: int, every: int) -> bool:
    """True when one of the call indices ``first .. first + steps - 1`` divides by ``every``."""
    return every == 1 or (-first) % every < steps


def recorder_for(definition) -> InfoRecorder | None:
    """The recorder a job's config asks for, or None (predict jobs, no setting, process > 0)."""
    setting = definition.config.settings.get("summary")
    if setting is None or not definition.is_train or jax.process_index() != 0:
        return None
    logdir, every = setting
    return InfoRecorder(definition.name, logdir, every)
