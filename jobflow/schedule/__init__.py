"""Learning-rate schedules: pure, jit-safe functions of the job's step counter.

Every schedule is a :class:`Schedule` with ``__call__(step) -> lr``, ``values(n)`` and
``plot(n, path)``. An optimizer's ``lr_scheduler`` also accepts a number, any callable
``step -> lr`` (optax schedules as they are) and a list indexed by step.

Namespaces (names collide across frameworks, so each keeps its own semantics):

* ``jobflow.schedule``: OneFlow 0.7's ``oneflow.optim.lr_scheduler`` names (``StepLR``,
  ``CosineDecayLR``, ``WarmupLR``, ...), composition (``join``, ``product``, ``chain``,
  ``with_warmup``) and the protocol;
* ``jobflow.schedule.pytorch``: PyTorch's names and semantics;
* ``jobflow.schedule.mindspore``: MindSpore's ``dynamic_lr`` functions and
  ``learning_rate_schedule`` classes;
* ``jobflow.schedule.transformers``: ``get_scheduler`` and transformers' functions;
* ``jobflow.optimizer``: OneFlow's legacy ``*Scheduler`` classes (also here, in
  ``jobflow.schedule.legacy``).
"""

from jobflow.schedule import legacy as legacy
from jobflow.schedule import mindspore as mindspore
from jobflow.schedule import pytorch as pytorch
from jobflow.schedule import transformers as transformers
from jobflow.schedule.base import Constant as Constant
from jobflow.schedule.base import FunctionSchedule as FunctionSchedule
from jobflow.schedule.base import Schedule as Schedule
from jobflow.schedule.base import Table as Table
from jobflow.schedule.base import as_schedule as as_schedule
from jobflow.schedule.compose import chain as chain
from jobflow.schedule.compose import join as join
from jobflow.schedule.compose import product as product
from jobflow.schedule.compose import with_warmup as with_warmup
from jobflow.schedule.legacy import CosineScheduler as CosineScheduler
from jobflow.schedule.legacy import PiecewiseConstantScheduler as PiecewiseConstantScheduler
from jobflow.schedule.legacy import WarmupConf as WarmupConf
from jobflow.schedule.legacy import warmup as warmup
from jobflow.schedule.oneflow import ChainedScheduler as ChainedScheduler
from jobflow.schedule.oneflow import ConstantLR as ConstantLR
from jobflow.schedule.oneflow import CosineAnnealingLR as CosineAnnealingLR
from jobflow.schedule.oneflow import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from jobflow.schedule.oneflow import CosineDecayLR as CosineDecayLR
from jobflow.schedule.oneflow import CyclicLR as CyclicLR
from jobflow.schedule.oneflow import ExponentialLR as ExponentialLR
from jobflow.schedule.oneflow import LambdaLR as LambdaLR
from jobflow.schedule.oneflow import LinearLR as LinearLR
from jobflow.schedule.oneflow import MultiplicativeLR as MultiplicativeLR
from jobflow.schedule.oneflow import MultiStepLR as MultiStepLR
from jobflow.schedule.oneflow import OneCycleLR as OneCycleLR
from jobflow.schedule.oneflow import PolynomialLR as PolynomialLR
from jobflow.schedule.oneflow import ReduceLROnPlateau as ReduceLROnPlateau
from jobflow.schedule.oneflow import SequentialLR as SequentialLR
from jobflow.schedule.oneflow import StepLR as StepLR
from jobflow.schedule.oneflow import WarmupLR as WarmupLR
from jobflow.schedule.oneflow import WarmUpLR as WarmUpLR
from jobflow.schedule.state import StatefulSchedule as StatefulSchedule
