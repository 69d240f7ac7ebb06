"""OneFlow's ``oneflow/core/operator/op_conf.proto``, the part programs use: the
``ActivationType`` enum (``kNone``, ``kTanH``, ``kSigmoid``, ``kRelu``)."""

from jobflow._src.core.protos import build

build(
    globals(),
    "oneflow/core/operator/op_conf.proto",
    __name__,
    enums={"ActivationType": [("kNone", 0), ("kTanH", 1), ("kSigmoid", 2), ("kRelu", 3)]},
)
