"""Optimizers, gradient clipping and the legacy learning-rate schedulers.

``flow.optimizer.SGD(lr_scheduler, momentum=0.9).minimize(loss)`` inside a train job
adds the update to the job's compiled step. docs/optimizers.md lists every update rule.
"""

from jobflow._src.optimizer.adafactor import Adafactor as Adafactor
from jobflow._src.optimizer.adagrad import Adagrad as Adagrad
from jobflow._src.optimizer.adagrad import ProximalAdagrad as ProximalAdagrad
from jobflow._src.optimizer.adam import Adam as Adam
from jobflow._src.optimizer.adam import AdamW as AdamW
from jobflow._src.optimizer.adam import LazyAdam as LazyAdam
from jobflow._src.optimizer.base import Optimizer as Optimizer
from jobflow._src.optimizer.combined import CombinedOptimizer as CombinedOptimizer
from jobflow._src.optimizer.ftrl import Ftrl as Ftrl
from jobflow._src.optimizer.lamb import LAMB as LAMB
from jobflow._src.optimizer.lars import LARS as LARS
from jobflow._src.optimizer.optax_adapter import Optax as Optax
from jobflow._src.optimizer.rmsprop import RMSProp as RMSProp
from jobflow._src.optimizer.sgd import SGD as SGD
from jobflow._src.optimizer.sgd import SGDW as SGDW
from jobflow._src.optimizer.sgd import Momentum as Momentum
from jobflow._src.optimizer.weight_decay import BIAS_AND_NORM as BIAS_AND_NORM

# -- OneFlow's legacy learning-rate schedulers (jobflow/_src/schedule/legacy.py) ------------
from jobflow._src.schedule.legacy import CosineScheduler as CosineScheduler
from jobflow._src.schedule.legacy import CustomScheduler as CustomScheduler
from jobflow._src.schedule.legacy import ExponentialScheduler as ExponentialScheduler
from jobflow._src.schedule.legacy import InverseTimeScheduler as InverseTimeScheduler
from jobflow._src.schedule.legacy import LinearCosineScheduler as LinearCosineScheduler
from jobflow._src.schedule.legacy import NaturalExpScheduler as NaturalExpScheduler
from jobflow._src.schedule.legacy import PiecewiseConstantScheduler as PiecewiseConstantScheduler
from jobflow._src.schedule.legacy import PiecewiseScalingScheduler as PiecewiseScalingScheduler
from jobflow._src.schedule.legacy import PolynomialSchduler as PolynomialSchduler
from jobflow._src.schedule.legacy import PolynomialScheduler as PolynomialScheduler
from jobflow._src.schedule.legacy import warmup as warmup
from jobflow.optimizer import grad_clipping as grad_clipping
from jobflow.optimizer import loss_scale as loss_scale
from jobflow.optimizer import pytorch as pytorch

__all__ = [
    # optimizers
    "Optimizer",
    "SGD",
    "SGDW",
    "Momentum",
    "Adam",
    "AdamW",
    "LazyAdam",
    "LARS",
    "LAMB",
    "RMSProp",
    "Adagrad",
    "ProximalAdagrad",
    "Ftrl",
    "Adafactor",
    "Optax",
    "CombinedOptimizer",
    # weight decay, clipping
    "BIAS_AND_NORM",
    "grad_clipping",
    "loss_scale",
    # PyTorch-convention Adam / AdamW
    "pytorch",
    # OneFlow's legacy schedulers
    "warmup",
    "PiecewiseConstantScheduler",
    "PiecewiseScalingScheduler",
    "CosineScheduler",
    "PolynomialScheduler",
    "PolynomialSchduler",
    "LinearCosineScheduler",
    "ExponentialScheduler",
    "InverseTimeScheduler",
    "NaturalExpScheduler",
    "CustomScheduler",
]
