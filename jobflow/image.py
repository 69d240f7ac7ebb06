"""``flow.image``: OneFlow's image ops for in-job data (docs/data.md).

They take the images of a data op (``flow.data.OFRecordImageDecoder``, ...) and run on the
host in the job's data pipeline; a dense result (``CropMirrorNormalize``, a fixed-size
``Resize``) is the step's array of the batch in a job body.
"""

from jobflow._src.data.image_nodes import CropMirrorNormalize as CropMirrorNormalize
from jobflow._src.data.image_nodes import CropMirrorNormalize as crop_mirror_normalize
from jobflow._src.data.image_nodes import Resize as Resize
from jobflow._src.data.image_nodes import Resize as resize
from jobflow._src.data.image_nodes import flip as flip
from jobflow._src.data.image_nodes import normalize as normalize
from jobflow._src.data.image_nodes import random_crop as random_crop
from jobflow._src.data.image_nodes import target_resize as target_resize

__all__ = [
    "CropMirrorNormalize",
    "crop_mirror_normalize",
    "Resize",
    "resize",
    "target_resize",
    "random_crop",
    "flip",
    "normalize",
]
