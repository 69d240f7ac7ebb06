"""OneFlow's protobuf modules (``oneflow.core.*_pb2``) built at import time.

OneFlow's Python programs import a few of its protobuf modules for their enums and
messages (``data_type_pb2.kFloat``, ``op_conf_pb2.kRelu``,
``initializer_conf_pb2.InitializerConf()``). jobflow rebuilds those names with the
``protobuf`` package from a short description of each ``.proto`` (OneFlow's names,
numbers and defaults; only what programs use): no ``protoc`` step, no generated code,
and the modules behave as generated ones do (``DataType.Name(2) == "kFloat"``,
``DataType.Value("kFloat") == 2``, module-level ``kFloat == 2``, real message classes).
They live in a private descriptor pool, so they never clash with an installed OneFlow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.internal import builder

__all__ = ["build", "field"]

_POOL = descriptor_pool.DescriptorPool()

_F = descriptor_pb2.FieldDescriptorProto
TYPES = {
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint64": _F.TYPE_UINT64,
    "bool": _F.TYPE_BOOL,
    "string": _F.TYPE_STRING,
}


def field(
    name: str,
    number: int,
    type_: str,
    *,
    default: Any = None,
    label: str = "optional",
    oneof: str | None = None,
) -> tuple:
    """One field: ``type_`` a scalar type name, ``"enum:Name"`` or ``"message:Name"``."""
    return (name, number, type_, default, label, oneof)


def _add_field(msg: Any, package: str, spec: tuple, oneofs: list) -> None:
    name, number, type_, default, label, oneof = spec
    f = msg.field.add(name=name, number=number)
    f.label = {"optional": _F.LABEL_OPTIONAL, "required": _F.LABEL_REQUIRED, "repeated": _F.LABEL_REPEATED}[
        label
    ]
    kind, _, type_name = type_.partition(":")
    if type_name:
        f.type = _F.TYPE_ENUM if kind == "enum" else _F.TYPE_MESSAGE
        f.type_name = f".{package}.{type_name}"
    else:
        f.type = TYPES[type_]
    if default is not None:
        f.default_value = str(default).lower() if isinstance(default, bool) else str(default)
    if oneof is not None:
        if oneof not in oneofs:
            oneofs.append(oneof)
            msg.oneof_decl.add(name=oneof)
        f.oneof_index = oneofs.index(oneof)


def build(
    namespace: dict,
    proto: str,
    module: str,
    *,
    enums: Mapping[str, Iterable[tuple[str, int]]] = (),  # type: ignore[assignment]
    messages: Mapping[str, Iterable[tuple]] = (),  # type: ignore[assignment]
    deps: Iterable[str] = (),
    package: str = "oneflow",
) -> None:
    """Fills ``namespace`` (a module's ``globals()``) as protoc's ``*_pb2.py`` would.

    Args:
      proto: the ``.proto`` path (OneFlow's, e.g. ``"oneflow/core/common/data_type.proto"``).
      module: the module's name (for the message classes' ``__module__``).
      enums: ``{enum name: [(value name, number)]}``.
      messages: ``{message name: [field(...)]}``.
      deps: ``.proto`` paths built before that this one refers to.
    """
    fdp = descriptor_pb2.FileDescriptorProto(name=proto, package=package, syntax="proto2")
    fdp.dependency.extend(deps)
    for enum_name, values in dict(enums).items():
        e = fdp.enum_type.add(name=enum_name)
        for value_name, number in values:
            e.value.add(name=value_name, number=number)
    for msg_name, fields in dict(messages).items():
        msg, oneofs = fdp.message_type.add(name=msg_name), list[str]()
        for spec in fields:
            _add_field(msg, package, spec, oneofs)
    descriptor = _POOL.Add(fdp)
    namespace["DESCRIPTOR"] = descriptor
    builder.BuildMessageAndEnumDescriptors(descriptor, namespace)
    builder.BuildTopDescriptorsAndMessages(descriptor, module, namespace)
