"""OneFlow's split / broadcast distributes (``flow.distribute``): how an array is laid out
over the devices of a job, expressed as XLA shardings by the runtime.

A distribute describes one device axis of the job's mesh:

* :func:`split` ``(axis)``: the array's dimension ``axis`` is cut into equal, contiguous
  pieces, one per device of the mesh axis (OneFlow's ``S(axis)``);
* :func:`broadcast` ``()``: every device holds the whole array (OneFlow's ``B``);
* :func:`auto` ``()``: jobflow decides: replicated, unless the job's ZeRO switches
  (``function_config.shard_optimizer_state`` / ``shard_variables``) split it.

A variable's layout is a tuple of distributes, one per mesh axis it names
(:func:`as_layout`): ``get_variable(distribute=d)`` gives ``(d,)``, OneFlow's 2-D
``parallel_distribution=[d_data, d_model]`` gives two. ``runtime/sharding.py`` turns a
layout into a ``PartitionSpec`` (the mapping is documented there and in
``docs/placement.md``). A layout never changes a job's numbers: XLA inserts the
communication, so a split job computes what a single-device job computes.

The module also holds OneFlow's deprecated ``flow.distribute.consistent_strategy`` /
``mirrored_strategy`` (aliases of ``flow.scope.consistent_view`` / ``mirrored_view``) and
their ``*_enabled`` queries.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any

from jax.sharding import PartitionSpec as P

from jobflow._src.core import checks as _checks
from jobflow._src.core import trace as _trace
from jobflow._src.core.errors import ArgumentError
from jobflow._src.graph import scope as _scope

__all__ = [
    "Distribute",
    "SplitDistribute",
    "BroadcastDistribute",
    "AutoDistribute",
    "split",
    "broadcast",
    "auto",
    "assert_is_valid_distribute",
    "as_layout",
    "check_layout_rank",
    "layout_text",
    "mesh_layout",
    "partition_spec",
    "consistent_strategy",
    "mirrored_strategy",
    "consistent_strategy_enabled",
    "mirrored_strategy_enabled",
]


class Distribute:
    """Base of the three distributes (OneFlow's ``oneflow._oneflow_internal.distribute.Distribute``)."""

    def sbp(self) -> str:
        """OneFlow's string form: ``"S(k)"``, ``"B"`` or ``""`` for auto."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class SplitDistribute(Distribute):
    """Dimension ``axis`` split in equal contiguous pieces over one mesh axis."""

    axis: int

    def sbp(self) -> str:
        return f"S({self.axis})"

    def __repr__(self) -> str:
        return f"flow.distribute.split({self.axis})"


@dataclasses.dataclass(frozen=True)
class BroadcastDistribute(Distribute):
    """The whole array on every device of one mesh axis."""

    def sbp(self) -> str:
        return "B"

    def __repr__(self) -> str:
        return "flow.distribute.broadcast()"


@dataclasses.dataclass(frozen=True)
class AutoDistribute(Distribute):
    """jobflow chooses: replicated unless the job's ZeRO switches split the array."""

    def sbp(self) -> str:
        return ""

    def __repr__(self) -> str:
        return "flow.distribute.auto()"


def split(axis: int) -> SplitDistribute:
    """OneFlow's ``S(axis)``: dimension ``axis`` of the array is split in equal contiguous
    pieces over the devices (``get_variable(distribute=flow.distribute.split(0))``).

    Args:
      axis: a non-negative int, checked against the array's rank where the distribute is
        used (a variable of rank 2 takes ``split(0)`` or ``split(1)``).

    Raises:
      ArgumentError: ``axis`` is not an int (a bool is not an int here) or is negative
        (a ``TypeError`` and a ``ValueError``).
    """
    return SplitDistribute(_checks.integer("flow.distribute.split", "axis", axis, low=0))


def broadcast() -> BroadcastDistribute:
    """OneFlow's ``B``: every device holds the whole array (replicated)."""
    return BroadcastDistribute()


def auto() -> AutoDistribute:
    """jobflow decides the layout: replicated, unless ``function_config.shard_variables`` /
    ``shard_optimizer_state`` split the array (ZeRO)."""
    return AutoDistribute()


_VALID = "flow.distribute.split(axis), flow.distribute.broadcast() or flow.distribute.auto()"


def assert_is_valid_distribute(distribute: Any) -> None:
    """Raises ``TypeError`` unless ``distribute`` is a :class:`Distribute` (OneFlow's check)."""
    if not isinstance(distribute, Distribute):
        raise ArgumentError(f"not a valid distribute: expected {_VALID}; got {distribute!r}")


_SBP_RE = re.compile(r"^\s*(?:S\(\s*(\d+)\s*\)|(B))\s*$")


def _one(where: str, value: Any) -> Distribute:
    """One distribute from a :class:`Distribute` or OneFlow's string ``"S(k)"`` / ``"B"``."""
    if isinstance(value, Distribute):
        return value
    if isinstance(value, str):
        m = _SBP_RE.match(value)
        if m is not None:
            return split(int(m.group(1))) if m.group(1) is not None else broadcast()
    raise ArgumentError(f"{where} must be {_VALID} (or OneFlow's 'S(k)' / 'B'); got {value!r}")


def as_layout(where: str, distribute: Any = None, parallel_distribution: Any = None) -> tuple:
    """The layout (a tuple of :class:`Distribute`, one per mesh axis named) of
    ``distribute`` / ``parallel_distribution``; ``()`` when neither is given.

    ``distribute`` is one distribute (or None); ``parallel_distribution`` is OneFlow's
    list of one or two distributes or strings (``["B", "S(0)"]``, or ``"B,S(0)"``). Giving
    both is an error, as in OneFlow. ``where`` names the call in error messages.
    """
    if distribute is not None and parallel_distribution is not None:
        raise ArgumentError(
            f"{where}: give distribute or parallel_distribution, not both; got "
            f"distribute={distribute!r}, parallel_distribution={parallel_distribution!r}"
        )
    if distribute is not None:
        if isinstance(distribute, (list, tuple)):  # a 2-D layout given as distribute=[...]
            parallel_distribution = distribute
        else:
            return (_one(f"{where} distribute", distribute),)
    if parallel_distribution is None:
        return ()
    items = parallel_distribution
    if isinstance(items, str):
        items = items.split(",")
    if not isinstance(items, (list, tuple)) or not 1 <= len(items) <= 2:
        raise ArgumentError(
            f"{where} parallel_distribution must be a list of one or two distributes (one per "
            f"axis of the placement's hierarchy); got {parallel_distribution!r}"
        )
    return tuple(_one(f"{where} parallel_distribution[{i}]", d) for i, d in enumerate(items))


def check_layout_rank(where: str, layout: tuple, shape: tuple) -> None:
    """Raises ``ValueError`` when a ``split(k)`` of ``layout`` names an axis the array of
    ``shape`` does not have."""
    for d in layout:
        if isinstance(d, SplitDistribute) and d.axis >= len(shape):
            raise ArgumentError(
                f"{where}: {d!r} splits axis {d.axis}, but the array has shape {tuple(shape)} "
                f"(rank {len(shape)}); use an axis in [0, {len(shape)})"
            )


def layout_text(layout: tuple) -> str:
    """``"split(0)"`` / ``"[broadcast(), split(1)]"``: a layout as error messages show it."""
    if len(layout) == 1:
        return repr(layout[0])
    return "[" + ", ".join(map(repr, layout)) + "]"


# ------------------------------------------------------------------ layouts on a job's mesh


def mesh_layout(axis_names: tuple, layout: tuple) -> tuple:
    """``layout`` with one distribute per mesh axis where it can: a single distribute on a
    2-D mesh ``("data", "model")`` names the ``"model"`` axis, the ``"data"`` axis getting
    ``auto()`` (for a variable: not split over ``"data"``)."""
    if len(layout) == 1 and len(axis_names) == 2:
        return (auto(), layout[0])
    return layout


def partition_spec(axis_names: tuple, layout: tuple, ndim: int, activation: bool = False) -> P | None:
    """The ``PartitionSpec`` of an array of rank ``ndim`` with ``layout`` on a mesh with
    ``axis_names``; None when the layout leaves the choice to jobflow (empty, or only
    ``auto()``).

    Each ``split(k)`` puts its mesh axis on dimension ``k`` (``[split(0), split(0)]`` on a
    2-D mesh splits dimension 0 over ``("data", "model")``); ``broadcast()`` leaves the
    array whole along its mesh axis, and so does ``auto()`` for a variable. For an
    ``activation`` (``parallel_cast``), ``auto()`` on a mesh axis leaves every dimension
    that no ``split`` names to XLA (``PartitionSpec.UNCONSTRAINED``: the batch keeps the
    split XLA propagated). The caller has checked the ranks (``check_layout_rank``).
    """
    layout = mesh_layout(axis_names, layout)
    if all(isinstance(d, AutoDistribute) for d in layout):
        return None
    dims: list[list[str]] = [[] for _ in range(ndim)]
    for axis_name, d in zip(axis_names, layout):
        if isinstance(d, SplitDistribute):
            dims[d.axis].append(axis_name)
    free = P.UNCONSTRAINED if activation and any(isinstance(d, AutoDistribute) for d in layout) else None
    entries = [free if not a else a[0] if len(a) == 1 else tuple(a) for a in dims]
    while entries and entries[-1] is None:  # P("data") rather than P("data", None): one spelling
        entries.pop()
    return P(*entries)


# ------------------------------------------------------------ OneFlow's deprecated aliases


def consistent_strategy() -> _scope.LogicalView:
    """Deprecated alias of ``flow.scope.consistent_view()`` (warns, as OneFlow did)."""
    warnings.warn(
        "flow.distribute.consistent_strategy is deprecated; use flow.scope.consistent_view",
        DeprecationWarning,
        stacklevel=2,
    )
    return _scope.consistent_view()


def mirrored_strategy() -> _scope.LogicalView:
    """Deprecated alias of ``flow.scope.mirrored_view()`` (warns, as OneFlow did)."""
    warnings.warn(
        "flow.distribute.mirrored_strategy is deprecated; use flow.scope.mirrored_view",
        DeprecationWarning,
        stacklevel=2,
    )
    return _scope.mirrored_view()


def _view_kind() -> str:
    """The view in effect here: the innermost entered view, else the traced job's view,
    else ``"consistent"`` (OneFlow's default)."""
    view = _scope.current_view()
    if view is not None:
        return view.kind
    ctx = _trace.current()
    if ctx is not None:
        return ctx.config.settings["default_logical_view"].kind
    return "consistent"


def consistent_strategy_enabled() -> bool:
    """True where the consistent view is in effect (see ``mirrored_strategy_enabled``)."""
    return _view_kind() == "consistent"


def mirrored_strategy_enabled() -> bool:
    """True inside ``with flow.scope.mirrored_view():`` or in the body of a job whose
    ``function_config.default_logical_view`` is the mirrored view."""
    return _view_kind() == "mirrored"
