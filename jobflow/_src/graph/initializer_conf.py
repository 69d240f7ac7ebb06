"""OneFlow's ``InitializerConf`` protobuf messages as jobflow initializers.

Old OneFlow programs build initializers as messages
(``conf = initializer_conf_pb2.InitializerConf(); conf.truncated_normal_conf.std = 0.8``)
and pass them where an initializer goes. :func:`from_conf` turns such a message (anything
with protobuf's ``WhichOneof``) into the matching :class:`~jobflow._src.graph.variables.Initializer`,
with OneFlow's fillers: Xavier is uniform with variance ``1/n``, MSRA normal with
variance ``2/n`` (``n`` per ``variance_norm``).
"""

from __future__ import annotations

from typing import Any

from jobflow._src.graph import variables as _v

__all__ = ["is_conf", "from_conf"]

_NORMS = {0: "fan_in", 1: "fan_out", 2: "fan_avg"}  # VarianceNorm kFanIn, kFanOut, kAverage
_DISTS = {0: "random_uniform", 1: "random_normal", 2: "truncated_normal"}  # RandomDistribution


def is_conf(initializer) -> bool:
    """True for an ``InitializerConf`` message (duck-typed on protobuf's ``WhichOneof``)."""
    return callable(getattr(initializer, "WhichOneof", None)) and not isinstance(initializer, _v.Initializer)


def from_conf(conf) -> _v.Initializer:
    """The initializer an ``InitializerConf`` describes; ValueError for one jobflow lacks."""
    kind = conf.WhichOneof("type")
    c: Any = getattr(conf, kind) if kind else None
    if kind in ("constant_conf", "constant_int_conf"):
        return _v.constant_initializer(c.value)
    if kind == "empty_conf":
        return _v.zeros_initializer()
    if kind == "random_uniform_conf":
        return _v.random_uniform_initializer(c.min, c.max)
    if kind == "random_uniform_int_conf":
        return _v.random_uniform_initializer(c.min, c.max)  # cast to the variable's int dtype
    if kind == "random_normal_conf":
        return _v.random_normal_initializer(c.mean, c.std)
    if kind == "truncated_normal_conf":
        return _v.truncated_normal_initializer(c.mean, c.std)
    if kind == "xavier_conf":
        return _v.variance_scaling_initializer(1.0, _NORMS[c.variance_norm], "random_uniform", c.data_format)
    if kind == "msra_conf":
        return _v.variance_scaling_initializer(2.0, _NORMS[c.variance_norm], "random_normal", c.data_format)
    if kind == "variance_scaling_conf":
        return _v.variance_scaling_initializer(
            c.scale, _NORMS[c.variance_norm], _DISTS[c.distribution], c.data_format
        )
    raise ValueError(
        f"InitializerConf with {kind or 'no initializer set'!r} is not supported; use a flow.*_initializer"
    )
