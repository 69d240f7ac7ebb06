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

from jobflow._src.schedule.base import Constant as Constant
from jobflow._src.schedule.base import FunctionSchedule as FunctionSchedule
from jobflow._src.schedule.base import Schedule as Schedule
from jobflow._src.schedule.base import Table as Table
from jobflow._src.schedule.base import as_schedule as as_schedule
from jobflow._src.schedule.compose import chain as chain
from jobflow._src.schedule.compose import join as join
from jobflow._src.schedule.compose import product as product
from jobflow._src.schedule.compose import with_warmup as with_warmup
from jobflow._src.schedule.legacy import CosineScheduler as CosineScheduler
from jobflow._src.schedule.legacy import PiecewiseConstantScheduler as PiecewiseConstantScheduler
from jobflow._src.schedule.legacy import WarmupConf as WarmupConf
from jobflow._src.schedule.legacy import warmup as warmup
from jobflow._src.schedule.oneflow import ChainedScheduler as ChainedScheduler
from jobflow._src.schedule.oneflow import ConstantLR as ConstantLR
from jobflow._src.schedule.oneflow import CosineAnnealingLR as CosineAnnealingLR
from jobflow._src.schedule.oneflow import CosineAnnealingWarmRestarts as CosineAnnealingWarmRestarts
from jobflow._src.schedule.oneflow import CosineDecayLR as CosineDecayLR
from jobflow._src.schedule.oneflow import CyclicLR as CyclicLR
from jobflow._src.schedule.oneflow import ExponentialLR as ExponentialLR
from jobflow._src.schedule.oneflow import LambdaLR as LambdaLR
from jobflow._src.schedule.oneflow import LinearLR as LinearLR
from jobflow._src.schedule.oneflow import MultiplicativeLR as MultiplicativeLR
from jobflow._src.schedule.oneflow import MultiStepLR as MultiStepLR
from jobflow._src.schedule.oneflow import OneCycleLR as OneCycleLR
from jobflow._src.schedule.oneflow import PolynomialLR as PolynomialLR
from jobflow._src.schedule.oneflow import ReduceLROnPlateau as ReduceLROnPlateau
from jobflow._src.schedule.oneflow import SequentialLR as SequentialLR
from jobflow._src.schedule.oneflow import StepLR as StepLR
from jobflow._src.schedule.oneflow import WarmUpLR as WarmUpLR
from jobflow._src.schedule.oneflow import WarmupLR as WarmupLR
from jobflow._src.schedule.state import StatefulSchedule as StatefulSchedule
from jobflow.schedule import legacy as legacy
from jobflow.schedule import mindspore as mindspore
from jobflow.schedule import oneflow as oneflow
from jobflow.schedule import pytorch as pytorch
from jobflow.schedule import transformers as transformers
