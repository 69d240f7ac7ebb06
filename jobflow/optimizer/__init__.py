"""Optimizers, gradient clipping and the legacy learning-rate schedulers.

``flow.optimizer.SGD(lr_scheduler, momentum=0.9).minimize(loss)`` inside a train job
adds the update to the job's compiled step.
"""

from jobflow.optimizer import clipping as grad_clipping
from jobflow.optimizer.base import Optimizer as Optimizer
from jobflow.optimizer.sgd import SGD as SGD

# -- OneFlow's legacy learning-rate schedulers (jobflow/schedule/legacy.py) ------------
from jobflow.schedule.legacy import CosineScheduler as CosineScheduler  # noqa: E402
from jobflow.schedule.legacy import CustomScheduler as CustomScheduler  # noqa: E402
from jobflow.schedule.legacy import ExponentialScheduler as ExponentialScheduler  # noqa: E402
from jobflow.schedule.legacy import InverseTimeScheduler as InverseTimeScheduler  # noqa: E402
from jobflow.schedule.legacy import LinearCosineScheduler as LinearCosineScheduler  # noqa: E402
from jobflow.schedule.legacy import NaturalExpScheduler as NaturalExpScheduler  # noqa: E402
from jobflow.schedule.legacy import PiecewiseConstantScheduler as PiecewiseConstantScheduler  # noqa: E402
from jobflow.schedule.legacy import PiecewiseScalingScheduler as PiecewiseScalingScheduler  # noqa: E402
from jobflow.schedule.legacy import PolynomialSchduler as PolynomialSchduler  # noqa: E402
from jobflow.schedule.legacy import PolynomialScheduler as PolynomialScheduler  # noqa: E402
from jobflow.schedule.legacy import warmup as warmup  # noqa: E402

__all__ = ["Optimizer", "SGD", "grad_clipping"]
__all__ += [
    "warmup", "PiecewiseConstantScheduler", "PiecewiseScalingScheduler", "CosineScheduler",
    "PolynomialScheduler", "PolynomialSchduler", "LinearCosineScheduler", "ExponentialScheduler",
    "InverseTimeScheduler", "NaturalExpScheduler", "CustomScheduler",
]
