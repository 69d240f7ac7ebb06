"""Optimizers, gradient clipping and the legacy learning-rate schedulers.

``flow.optimizer.SGD(lr_scheduler, momentum=0.9).minimize(loss)`` inside a train job
adds the update to the job's compiled step. docs/optimizers.md lists every update rule.
"""

from jobflow.optimizer import clipping as grad_clipping
from jobflow.optimizer import loss_scale as loss_scale
from jobflow.optimizer.adafactor import Adafactor as Adafactor
from jobflow.optimizer.adagrad import Adagrad as Adagrad
from jobflow.optimizer.adagrad import ProximalAdagrad as ProximalAdagrad
from jobflow.optimizer.adam import Adam as Adam
from jobflow.optimizer.adam import AdamW as AdamW
from jobflow.optimizer.adam import LazyAdam as LazyAdam
from jobflow.optimizer.base import Optimizer as Optimizer
from jobflow.optimizer.combined import CombinedOptimizer as CombinedOptimizer
from jobflow.optimizer.ftrl import Ftrl as Ftrl
from jobflow.optimizer.lamb import LAMB as LAMB
from jobflow.optimizer.lars import LARS as LARS
from jobflow.optimizer.optax_adapter import Optax as Optax
from jobflow.optimizer.rmsprop import RMSProp as RMSProp
from jobflow.optimizer.sgd import SGD as SGD
from jobflow.optimizer.sgd import SGDW as SGDW
from jobflow.optimizer.sgd import Momentum as Momentum
from jobflow.optimizer.weight_decay import BIAS_AND_NORM as BIAS_AND_NORM

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

__all__ = [
    # optimizers
    "Optimizer", "SGD", "SGDW", "Momentum", "Adam", "AdamW", "LazyAdam", "LARS", "LAMB", "RMSProp",
    "Adagrad", "ProximalAdagrad", "Ftrl", "Adafactor", "Optax", "CombinedOptimizer",
    # weight decay, clipping
    "BIAS_AND_NORM", "grad_clipping", "loss_scale",
    # OneFlow's legacy schedulers
    "warmup", "PiecewiseConstantScheduler", "PiecewiseScalingScheduler", "CosineScheduler",
    "PolynomialScheduler", "PolynomialSchduler", "LinearCosineScheduler", "ExponentialScheduler",
    "InverseTimeScheduler", "NaturalExpScheduler", "CustomScheduler",
]
