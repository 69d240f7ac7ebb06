"""OneFlow's ``oneflow/core/job/initializer_conf.proto``: ``InitializerConf`` (a oneof of
the initializer messages) and the ``VarianceNorm`` / ``RandomDistribution`` enums.

    init = initializer_conf_pb2.InitializerConf()
    init.truncated_normal_conf.std = 0.8
    flow.get_variable("w", (3, 4), initializer=init)
"""

from jobflow._src.core.protos import build, field

_MESSAGES = {
    "ConstantInitializerConf": [field("value", 1, "float", default=0)],
    "ConstantIntInitializerConf": [field("value", 1, "int64", default=0)],
    "RandomUniformInitializerConf": [
        field("min", 1, "float", default=0),
        field("max", 2, "float", default=1),
    ],
    "RandomUniformIntInitializerConf": [
        field("min", 1, "int32", default=0),
        field("max", 2, "int32", default=1),
    ],
    "RandomNormalInitializerConf": [
        field("mean", 1, "float", default=0),
        field("std", 2, "float", default=1),
    ],
    "TruncatedNormalInitializerConf": [
        field("mean", 1, "float", default=0.0),
        field("std", 2, "float", default=0.05),
    ],
    "XavierInitializerConf": [
        field("variance_norm", 1, "enum:VarianceNorm", label="required"),
        field("data_format", 2, "string", label="required"),
    ],
    "MsraInitializerConf": [
        field("variance_norm", 1, "enum:VarianceNorm", label="required"),
        field("data_format", 2, "string", label="required"),
    ],
    "RangeInitializerConf": [
        field("start", 1, "double", default=0),
        field("stride", 2, "double", default=1),
        field("axis", 3, "int64", default=-1),
    ],
    "IntRangeInitializerConf": [
        field("start", 1, "int64", default=0),
        field("stride", 2, "int64", default=1),
        field("axis", 3, "int64", default=-1),
    ],
    "VarianceScalingInitializerConf": [
        field("scale", 1, "float", label="required"),
        field("variance_norm", 2, "enum:VarianceNorm", label="required"),
        field("distribution", 3, "enum:RandomDistribution", label="required"),
        field("data_format", 4, "string", label="required"),
    ],
    "EmptyInitializerConf": [],
}
_ONEOF = [
    ("constant_conf", "ConstantInitializerConf"),
    ("constant_int_conf", "ConstantIntInitializerConf"),
    ("random_uniform_conf", "RandomUniformInitializerConf"),
    ("random_uniform_int_conf", "RandomUniformIntInitializerConf"),
    ("random_normal_conf", "RandomNormalInitializerConf"),
    ("truncated_normal_conf", "TruncatedNormalInitializerConf"),
    ("xavier_conf", "XavierInitializerConf"),
    ("msra_conf", "MsraInitializerConf"),
    ("range_conf", "RangeInitializerConf"),
    ("int_range_conf", "IntRangeInitializerConf"),
    ("variance_scaling_conf", "VarianceScalingInitializerConf"),
    ("empty_conf", "EmptyInitializerConf"),
]
_MESSAGES["InitializerConf"] = [
    field(name, i + 1, f"message:{msg}", oneof="type") for i, (name, msg) in enumerate(_ONEOF)
]
_MESSAGES["InitializeWithSnapshotConf"] = [
    field("path", 1, "string", label="required"),
    field("key", 2, "string"),
]

build(
    globals(),
    "oneflow/core/job/initializer_conf.proto",
    __name__,
    enums={
        "VarianceNorm": [("kFanIn", 0), ("kFanOut", 1), ("kAverage", 2)],
        "RandomDistribution": [("kRandomUniform", 0), ("kRandomNormal", 1), ("kTruncatedNormal", 2)],
    },
    messages=_MESSAGES,
)
