"""Session-wide settings (``flow.config``) and per-job settings (``flow.function_config``)."""

from jobflow._src.graph.function_config import FunctionConfig as FunctionConfig
from jobflow._src.graph.function_config import function_config as function_config
from jobflow._src.graph.settings import cpu_device_num as cpu_device_num
from jobflow._src.graph.settings import enable_legacy_model_io as enable_legacy_model_io
from jobflow._src.graph.settings import gpu_device_num as gpu_device_num
from jobflow._src.graph.settings import seed as seed
from jobflow.config import env as env

__all__ = [
    "FunctionConfig",
    "function_config",
    "env",
    "seed",
    "cpu_device_num",
    "gpu_device_num",
    "enable_legacy_model_io",
]
