"""OneFlow's ``oneflow/core/common/data_type.proto``: the ``DataType`` enum and ``OptInt64``.

``DataType.Name(2) == "kFloat"``, ``DataType.Value("kFloat") == 2``, ``kFloat == 2``.
"""

from jobflow._src.core.protos import build, field

build(
    globals(),
    "oneflow/core/common/data_type.proto",
    __name__,
    enums={
        "DataType": [
            ("kInvalidDataType", 0),
            ("kChar", 1),
            ("kFloat", 2),
            ("kDouble", 3),
            ("kInt8", 4),
            ("kInt32", 5),
            ("kInt64", 6),
            ("kUInt8", 7),
            ("kOFRecord", 8),
            ("kFloat16", 9),
            ("kTensorBuffer", 10),
        ]
    },
    messages={"OptInt64": [field("value", 1, "int64", default=-1)]},
)
