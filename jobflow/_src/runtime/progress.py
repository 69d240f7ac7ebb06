"""``flow.progress(job, total=...)``: a rich progress bar for a training loop.

::

    with flow.progress(train_job, total=steps) as bar:
        for x, y in batches:
            train_job(x, y)
            bar.update()                      # or: for x, y in bar.track(batches): ...

The bar shows the steps done out of ``total``, the job's latest ``loss`` and ``lr`` (from
``job.last_info``), the steps per second since the bar started and the elapsed time. The
info is read only when the bar redraws (``refresh_per_second``) and only once the job's
last step has finished, so a loop that does not wait for its results is never made to
wait by the bar (it shows the newest finished step's values; at the end, the last step's).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from jobflow._src.core.errors import ArgumentError
from jobflow._src.runtime.job import Job

__all__ = ["TrainingProgress", "progress"]


class TrainingProgress:
    """A progress bar following one job's steps; use it as a context manager."""

    def __init__(
        self,
        job: Job,
        total: int | None = None,
        completed: int = 0,
        description: str | None = None,
        console: Console | None = None,
        refresh_per_second: float = 4,
        transient: bool = False,
    ) -> None:
        self.job = job
        self._interval = 1.0 / refresh_per_second
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  lr {task.fields[lr]}  {task.fields[rate]} steps/s"),
            TimeElapsedColumn(),
        )
        self._progress = Progress(
            *columns, console=console, transient=transient, refresh_per_second=refresh_per_second
        )
        self._task = self._progress.add_task(
            description or job.name, total=total, completed=completed, loss="-", lr="-", rate="-"
        )
        self._count = completed
        self._start: tuple[float, int] | None = None  # (time, count) of the first update: after compiling
        self._last_read = time.perf_counter()
        self.info: dict = {}  # the newest finished step's info shown

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self._refresh(wait=True)
        self._progress.stop()

    def update(self, advance: int = 1, description: str | None = None) -> None:
        """Counts ``advance`` more steps; redraws the job's values when it is time."""
        now = time.perf_counter()
        if self._start is None:
            self._start = (now, self._count)
        self._count += advance
        self._progress.update(self._task, advance=advance, description=description)
        if now - self._last_read >= self._interval:
            self._last_read = now
            self._refresh(wait=False)

    def track(self, iterable: Iterable) -> Iterator:
        """Yields the items of ``iterable``, counting a step after each one."""
        for item in iterable:
            yield item
            self.update()

    def _refresh(self, wait: bool) -> None:
        packed = getattr(self.job, "_last_info", None)  # the job's newest PackedInfo
        if packed is None or not (wait or packed.is_ready()):
            return
        self.info = self.job.last_info
        fields: dict[str, Any] = {"loss": _number(self.info.get("loss")), "lr": _number(self.info.get("lr"))}
        if self._start is not None and self._count - self._start[1] > 1:
            # steps after the first (whose call compiled) over the time since it returned
            elapsed = time.perf_counter() - self._start[0]
            fields["rate"] = f"{(self._count - self._start[1] - 1) / elapsed:.1f}"
        self._progress.update(self._task, **fields)


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def progress(job: Job, total: int | None = None, **kwargs: Any) -> TrainingProgress:
    """A :class:`TrainingProgress` bar for ``job`` (a train job) over ``total`` steps.

    Keyword arguments: ``completed`` (steps already done, e.g. after a resume),
    ``description`` (default: the job's name), ``console`` (a ``rich.console.Console``),
    ``refresh_per_second`` (4), ``transient`` (False: the bar stays on screen).
    """
    if not isinstance(job, Job):
        raise ArgumentError(f"flow.progress(job) expects a job (a @flow.global_function); got {job!r}")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise ArgumentError(f"flow.progress(total) must be an int >= 0 or None; got {total!r}")
    return TrainingProgress(job, total, **kwargs)
