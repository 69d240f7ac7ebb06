"""Learning-rate schedules: pure, jit-safe functions of the job's step counter.

Every schedule is a :class:`Schedule` with ``__call__(step) -> lr``, ``values(n)`` and
``plot(n, path)``. An optimizer's ``lr_scheduler`` also accepts a number, any callable
``step -> lr`` (optax schedules as they are) and a list indexed by step.
"""

from jobflow.schedule.base import Constant as Constant
from jobflow.schedule.base import FunctionSchedule as FunctionSchedule
from jobflow.schedule.base import Schedule as Schedule
from jobflow.schedule.base import Table as Table
from jobflow.schedule.base import as_schedule as as_schedule
from jobflow.schedule.legacy import CosineScheduler as CosineScheduler
from jobflow.schedule.legacy import PiecewiseConstantScheduler as PiecewiseConstantScheduler
from jobflow.schedule.legacy import WarmupConf as WarmupConf
from jobflow.schedule.legacy import warmup as warmup
