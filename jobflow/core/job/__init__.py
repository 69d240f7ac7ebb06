"""``oneflow.core.job``: ``initializer_conf_pb2``."""
