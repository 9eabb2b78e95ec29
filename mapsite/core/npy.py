"""``.npy`` bytes: how arrays are stored in binary columns and served by the API.

One place for writing and reading them, so every table (spike arrays, waveforms, PSTH rates)
and every endpoint agrees on the format. Reading never unpickles.
"""

import io

import numpy as np


def npy_header(dtype: np.dtype, count: int) -> bytes:
    """The ``.npy`` (format 1.0) header of a 1-D C-order array of ``count`` elements."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out,
        {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": (int(count),),
        },
    )
    return out.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    """An array as ``.npy`` bytes (what ``np.load(io.BytesIO(b))`` reads back)."""
    array = np.ascontiguousarray(array)
    if array.ndim == 1:  # the common case: header + raw bytes, no second copy through np.save
        return npy_header(array.dtype, array.size) + array.tobytes()
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def npy_rows(array: np.ndarray) -> list[bytes]:
    """``.npy`` bytes of each row of a 2-D array (one header, built once)."""
    array = np.ascontiguousarray(array)
    if array.ndim != 2:
        raise ValueError("npy_rows needs a 2-D array")
    head = npy_header(array.dtype, array.shape[1])
    return [head + row.tobytes() for row in array]


def load_npy(data: bytes | memoryview) -> np.ndarray:
    """Read ``.npy`` bytes (a copy; never unpickles)."""
    return np.load(io.BytesIO(bytes(data)), allow_pickle=False)


def npy_view(data: bytes | memoryview) -> np.ndarray:
    """A 1-D ``.npy`` payload as a read-only array over the same memory (no copy)."""
    buffer = io.BytesIO(data)
    major, _ = np.lib.format.read_magic(buffer)
    if major == 1:
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
    if dtype.hasobject or fortran or len(shape) > 1:
        return load_npy(data).ravel()
    count = int(np.prod(shape)) if shape else 1
    return np.frombuffer(data, dtype=dtype, count=count, offset=buffer.tell())
