"""``flow.train.CheckPoint``: OneFlow v0.2's checkpoint object over :mod:`checkpoint`.

check_point = flow.train.CheckPoint()
if args.model_load_dir:
    check_point.load(args.model_load_dir)
else:
    check_point.init()
...                                   # train
check_point.save("./lenet_models_1")  # a directory, as in OneFlow
"""

from __future__ import annotations

import numpy as np

from jobflow._src.core.names import STEP_COUNTER_PREFIX
from jobflow._src.io import checkpoint as _checkpoint
from jobflow._src.runtime import sharding as _sharding
from jobflow._src.runtime.session import default_session

__all__ = ["CheckPoint"]


def _check_path(method: str, path) -> str:
    if not isinstance(path, str):  # OneFlow asserts type(path) is str
        raise TypeError(f"CheckPoint.{method}(path) must be a str; got {type(path).__name__}")
    return path


class CheckPoint:
    """OneFlow v0.2's ``flow.train.CheckPoint()``: ``init()``, ``save(path)``, ``load(path)``.

    The methods are :func:`jobflow.checkpoint.save` / :func:`~jobflow.checkpoint.load`
    and OneFlow's defaults: ``save`` writes the directory ``path`` in OneFlow's snapshot
    layout (``<var>/out`` + ``meta``, ``snapshot_done``: programs and tools written for
    OneFlow read it; ``format="jobflow"`` writes ``path/model.safetensors``), atomically, and refuses a
    non-empty existing ``path`` unless ``overwrite=True`` (OneFlow needed an empty or new
    directory too); ``load`` reads jobflow and OneFlow checkpoints, all or nothing.
    """

    def init(self) -> None:
        """Initializes every variable of every registered job with its initializer.

        jobflow initializes a variable when the first job that uses it is discovered,
        deterministically from (seed, name); ``init()`` discovers all registered jobs.
        OneFlow's ``init()`` ran the initializers again; jobflow cannot reset values that
        training already changed, so ``init()`` after a train step raises instead of
        silently keeping the trained values (use ``flow.clear_default_session()`` and
        define the jobs again, or ``load`` a checkpoint).
        """
        sess = default_session()
        trained = sorted(
            name[len(STEP_COUNTER_PREFIX) :]
            for name, value in sess.store.items()
            if name.startswith(STEP_COUNTER_PREFIX) and np.any(_sharding.to_numpy(value) != 0)
        )
        if trained:
            raise RuntimeError(
                f"CheckPoint.init(): train jobs {trained} have already updated the variables; "
                f"init() only initializes variables that do not exist yet. Call it before "
                f"training, or flow.clear_default_session() and define the jobs again"
            )
        sess.initialize_jobs()

    def save(self, path: str, *, overwrite: bool = False, format: str = "oneflow") -> None:
        """Saves every variable to the directory ``path`` (:func:`jobflow.checkpoint.save`), in
        OneFlow's layout unless ``format="jobflow"``."""
        _checkpoint.save(_check_path("save", path), overwrite=overwrite, format=format)

    def load(
        self, path: str, *, ignore_mismatch: bool = True, allow_missing: bool = False
    ) -> _checkpoint.LoadReport:
        """Loads ``path`` into the variables (:func:`jobflow.checkpoint.load`)."""
        return _checkpoint.load(
            _check_path("load", path), ignore_mismatch=ignore_mismatch, allow_missing=allow_missing
        )

    def __repr__(self):
        return "CheckPoint()"
