"""OneFlow's ``flow.distribute``: split / broadcast / auto layouts of variables and
activations over a job's devices (``docs/placement.md``)."""

from jobflow._src.graph.distribute import AutoDistribute as AutoDistribute
from jobflow._src.graph.distribute import BroadcastDistribute as BroadcastDistribute
from jobflow._src.graph.distribute import Distribute as Distribute
from jobflow._src.graph.distribute import SplitDistribute as SplitDistribute
from jobflow._src.graph.distribute import assert_is_valid_distribute as assert_is_valid_distribute
from jobflow._src.graph.distribute import auto as auto
from jobflow._src.graph.distribute import broadcast as broadcast
from jobflow._src.graph.distribute import consistent_strategy as consistent_strategy
from jobflow._src.graph.distribute import consistent_strategy_enabled as consistent_strategy_enabled
from jobflow._src.graph.distribute import mirrored_strategy as mirrored_strategy
from jobflow._src.graph.distribute import mirrored_strategy_enabled as mirrored_strategy_enabled
from jobflow._src.graph.distribute import split as split

__all__ = [
    "split",
    "broadcast",
    "auto",
    "assert_is_valid_distribute",
    "Distribute",
    "SplitDistribute",
    "BroadcastDistribute",
    "AutoDistribute",
    "consistent_strategy",
    "mirrored_strategy",
    "consistent_strategy_enabled",
    "mirrored_strategy_enabled",
]
