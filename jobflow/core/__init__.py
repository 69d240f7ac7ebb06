"""OneFlow's protobuf modules that programs import (``oneflow.core.*``):

* ``jobflow.core.common.data_type_pb2``: the ``DataType`` enum (``kFloat``, ...);
* ``jobflow.core.operator.op_conf_pb2``: the ``ActivationType`` enum (``kRelu``, ...);
* ``jobflow.core.job.initializer_conf_pb2``: ``InitializerConf`` and its initializer
  messages (``get_variable`` accepts an ``InitializerConf`` as its initializer).

They are built with ``protobuf`` at import time (``jobflow/_src/core/protos.py``); the
names, numbers and defaults are OneFlow v0.4's.
"""
