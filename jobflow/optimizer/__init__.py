"""Optimizers, gradient clipping and the legacy learning-rate schedulers.

``flow.optimizer.SGD(lr_scheduler, momentum=0.9).minimize(loss)`` inside a train job
adds the update to the job's compiled step.
"""

from jobflow.optimizer import clipping as grad_clipping
from jobflow.optimizer.base import Optimizer as Optimizer
from jobflow.optimizer.sgd import SGD as SGD
from jobflow.schedule.legacy import CosineScheduler as CosineScheduler
from jobflow.schedule.legacy import PiecewiseConstantScheduler as PiecewiseConstantScheduler
from jobflow.schedule.legacy import warmup as warmup

__all__ = ["Optimizer", "SGD", "grad_clipping", "warmup", "CosineScheduler", "PiecewiseConstantScheduler"]
