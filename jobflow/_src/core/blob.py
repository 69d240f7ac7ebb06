"""``Blob``: the numpy array a job result or a variable comes back as.

OneFlow's legacy API returned ``LocalBlob`` objects from jobs without a return
annotation (``job(x).get()``) and from ``get_all_variables``: ``.numpy()`` gave the
array, ``.numpy_list()`` one array per device. jobflow's :class:`Blob` is a
:class:`numpy.ndarray` subclass with the same methods, so code written for numpy
arrays and code written for OneFlow's blobs both work on it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Blob", "as_blob"]


class Blob(np.ndarray):
    """A numpy array with OneFlow's ``LocalBlob`` methods.

    ``numpy()`` is the whole array (in the mirrored view: the per-device results
    concatenated along axis 0, as OneFlow did); ``numpy_list()`` is one array per device
    in the mirrored view and ``[numpy()]`` otherwise; ``numpy(i)`` is device ``i``'s.
    """

    _parts: list | None = None

    def __array_finalize__(self, obj: object) -> None:
        self._parts = None  # views and results of arithmetic are plain blobs

    def numpy(self, parallel_id: int | None = None) -> np.ndarray:
        """The array (``parallel_id``: one device's array in the mirrored view)."""
        if parallel_id is None:
            return self.view(np.ndarray)
        parts = self.numpy_list()
        if isinstance(parallel_id, bool) or not isinstance(parallel_id, (int, np.integer)):
            raise TypeError(f"Blob.numpy(parallel_id) needs an int or None; got {parallel_id!r}")
        if not 0 <= parallel_id < len(parts):
            raise IndexError(f"Blob.numpy({parallel_id}): this result has {len(parts)} device part(s)")
        return parts[parallel_id]

    def numpy_list(self) -> list[np.ndarray]:
        """One array per device (mirrored view); ``[self.numpy()]`` otherwise."""
        if self._parts is not None:
            return list(self._parts)
        return [self.view(np.ndarray)]

    def parallel_num(self) -> int:
        """How many device parts :meth:`numpy_list` has."""
        return len(self.numpy_list())

    @property
    def is_dynamic(self) -> bool:
        """False: jobflow's results have static shapes (OneFlow's attribute)."""
        return False

    def ndarray(self) -> np.ndarray:
        """OneFlow's deprecated name of :meth:`numpy`."""
        return self.numpy()

    def ndarray_list(self) -> list[np.ndarray]:
        """OneFlow's deprecated name of :meth:`numpy_list`."""
        return self.numpy_list()


def as_blob(array: Any, parts: list | None = None) -> Blob:
    """``array`` as a :class:`Blob`; ``parts``: the per-device arrays (mirrored view)."""
    blob = np.asarray(array).view(Blob)
    if parts is not None:
        blob._parts = [np.asarray(p) for p in parts]
    return blob
