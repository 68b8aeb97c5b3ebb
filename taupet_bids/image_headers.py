"""Header-first reading of input NIfTI images, with hard caps, so hostile files fail in a second.

A NIfTI header says how much memory its voxels need before any of them is read. Everything the
caps below refuse is refused from the header alone (at most ``MAX_HEADER_BYTES`` read), and the
voxels of a ``.nii.gz`` are inflated by ``_inflate_capped``, which never writes past the size
the header declares (plus ``GZIP_SLACK_BYTES``): a small file that decompresses to gigabytes is
refused without inflating it whole, and never becomes a ``MemoryError``.

Every problem is an ``InputError`` naming the file (``errors.py``). This module belongs to the
foundation (``.importlinter``): it imports nibabel, numpy and ``errors`` only.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from taupet_bids.errors import InputError

#: Largest voxel array (bytes, in the data type on disk) an input image may declare: 4 GiB.
#: Generous: a 400x400x109 PET with 40 float32 frames is 2.8 GB, a 0.7 mm T1w under 0.1 GB.
#: With the copies the checks make, reading an image at the cap takes about twice this memory.
MAX_DATA_BYTES = 4 * 2**30

#: Largest header plus extensions (the NIfTI ``vox_offset``, bytes) an input image may declare.
#: dcm2niix's DICOM extensions are a few kB; 64 MiB leaves room for anything honest.
MAX_HEADER_BYTES = 64 * 2**20

#: Extra bytes a gzip stream may hold past the end of the voxels its header declares. Honest
#: writers add none; more than this and the file is refused (a truncated header or a bomb).
GZIP_SLACK_BYTES = 2**20

#: Physical range (mm) of a voxel edge, from the header's pixdim and from its affine. PET and MR
#: voxels are 0.5-5 mm; outside 0.1-20 mm the sizes are in the wrong unit or made up.
VOXEL_SIZE_RANGE_MM = (0.1, 20.0)

#: Largest field of view (mm) along any axis: total-body PET scanners are about 2 m long.
MAX_FIELD_OF_VIEW_MM = 2000.0

#: Fewest voxels along each spatial axis: a smaller grid cannot hold a brain at any resolution.
MIN_SPATIAL_VOXELS = 4

#: Data types an input image may hold (NumPy kinds): booleans, integers and reals. Complex and
#: RGB images are not intensities.
ALLOWED_KINDS = "biuf"

_GZIP_CHUNK = 2**20
_HEADERS = {348: nib.Nifti1Header, 540: nib.Nifti2Header}


def _is_gzip(path: Path) -> bool:
    return path.name.endswith(".gz")


def _read_prefix(path: Path, size: int) -> bytes:
    """The first ``size`` bytes of the (decompressed) file; gzip is inflated only so far."""
    opener = gzip.open if _is_gzip(path) else open
    with opener(path, "rb") as fh:
        return fh.read(size)


def _header_class(raw: bytes) -> tuple[type, str]:
    if len(raw) < 4:
        raise ValueError("file is shorter than a NIfTI header")
    for endian in ("<", ">"):
        (size,) = struct.unpack(f"{endian}i", raw[:4])
        if size in _HEADERS:
            return _HEADERS[size], endian
    raise ValueError("sizeof_hdr is neither 348 (NIfTI-1) nor 540 (NIfTI-2)")


def _check_extensions(raw: bytes, itemsize: int, vox_offset: int, endian: str) -> None:
    """Walk the extension list as nibabel will, refusing sizes that would make it read blindly.

    nibabel reads ``esize - 8`` bytes per extension without bounding ``esize`` by the space
    before the voxels; a zero or huge ``esize`` would make it inflate the whole file.
    """
    status = raw[itemsize : itemsize + 4]
    if len(status) < 4 or status[0:1] == b"\x00":
        return
    pos, left = itemsize + 4, vox_offset - (itemsize + 4)
    while left >= 16:
        if pos + 8 > len(raw):
            raise ValueError("header extensions run past the end of the file")
        (esize,) = struct.unpack(f"{endian}i", raw[pos : pos + 4])
        if esize < 8 or esize > left:
            raise ValueError(f"a header extension declares {esize} bytes of {left} available")
        pos, left = pos + esize, left - esize


def _describe_bytes(n: int) -> str:
    return f"{n / 2**30:.3g} GiB" if n >= 2**30 else f"{n / 2**20:.3g} MiB"


def read_header(path: Path) -> Any:
    """The NIfTI-1 or NIfTI-2 header of ``path``, read without its extensions or voxels.

    Raises ``InputError`` ("cannot read the NIfTI header ...") when it is not one, and when the
    header or extensions declare more than ``MAX_HEADER_BYTES``.
    """
    try:
        raw = _read_prefix(path, 544)
        klass, endian = _header_class(raw)
        itemsize = klass.template_dtype.itemsize
        if len(raw) < itemsize:
            raise ValueError("file is shorter than its NIfTI header")
        header = klass(raw[:itemsize], endianness=endian, check=False)
        vox_offset = float(header["vox_offset"])
    except (OSError, EOFError, zlib.error, ValueError, struct.error) as err:
        raise InputError(path, f"cannot read the NIfTI header ({err})") from err
    if not math.isfinite(vox_offset) or not 0 <= vox_offset <= MAX_HEADER_BYTES:
        raise InputError(
            path,
            f"the NIfTI header puts the voxels at byte {vox_offset:g} (vox_offset), beyond the "
            f"{_describe_bytes(MAX_HEADER_BYTES)} taupet-bids reads as header",
            "convert the image again (e.g. with dcm2niix)",
        )
    try:
        if int(vox_offset) > len(raw):
            raw = _read_prefix(path, int(vox_offset))
        _check_extensions(raw, itemsize, int(vox_offset), endian)
    except (OSError, EOFError, zlib.error, ValueError, struct.error) as err:
        raise InputError(path, f"cannot read the NIfTI header ({err})") from err
    return header


def check_header(path: Path, header: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Refuse, from the header alone, a grid or data size no real scan has; return shape, dtype.

    Checks, in order: data shape and type readable, voxel data within ``MAX_DATA_BYTES``, an
    orientation (sform or qform code set), voxel sizes within ``VOXEL_SIZE_RANGE_MM``, a finite
    invertible affine, the field of view within ``MAX_FIELD_OF_VIEW_MM`` and at least
    ``MIN_SPATIAL_VOXELS`` along each spatial axis (only for 3D and 4D images: other
    dimensionalities are refused by their caller with their own message).
    """
    try:
        shape = tuple(int(n) for n in header.get_data_shape())
        dtype = header.get_data_dtype()
    except Exception as err:  # nibabel raises several types for a damaged dim or datatype
        raise InputError(path, f"cannot read the NIfTI header ({err})") from err
    if any(n < 1 for n in shape) or not shape:
        raise InputError(path, f"the NIfTI header declares an empty grid (shape {shape})")
    if dtype.kind not in ALLOWED_KINDS or dtype.fields is not None:
        raise InputError(
            path,
            f"voxel data type {dtype} is not a real number or integer",
            "store intensities as integers or floats",
        )
    n_bytes = math.prod(shape) * dtype.itemsize
    if n_bytes > MAX_DATA_BYTES:
        grid = "x".join(str(n) for n in shape)
        raise InputError(
            path,
            f"the NIfTI header declares {grid} voxels of {dtype} ({_describe_bytes(n_bytes)}), "
            f"more than the {_describe_bytes(MAX_DATA_BYTES)} taupet-bids reads",
            "check the header dimensions, or crop/resample the image",
        )
    if int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        raise InputError(
            path,
            "no orientation: sform_code and qform_code are both 0, so left, right and the "
            "voxel positions are unknown",
            "convert the scan again with a tool that writes the orientation (e.g. dcm2niix)",
        )
    if len(shape) < 3:
        return shape, dtype
    lo, hi = VOXEL_SIZE_RANGE_MM
    pixdim = np.abs(np.asarray(header["pixdim"][1:4], dtype=np.float64))
    try:
        affine = np.asarray(header.get_best_affine(), dtype=np.float64)
    except Exception as err:
        raise InputError(path, f"cannot read the NIfTI orientation ({err})") from err
    columns = np.linalg.norm(affine[:3, :3], axis=0) if np.isfinite(affine).all() else None
    for name, sizes in (("pixdim", pixdim), ("affine", columns)):
        if sizes is None or not np.isfinite(sizes).all() or sizes.min() < lo or sizes.max() > hi:
            shown = "non-finite" if sizes is None else " x ".join(f"{s:g}" for s in sizes)
            raise InputError(
                path,
                f"voxel size {shown} mm (from the {name}) is outside {lo:g}-{hi:g} mm",
                "check the header's voxel sizes and units",
            )
    if abs(np.linalg.det(affine[:3, :3])) < (lo**3) / 1e3:
        raise InputError(path, "the affine is singular (its axes are not independent)")
    fov = columns * np.asarray(shape[:3], dtype=np.float64)
    if fov.max() > MAX_FIELD_OF_VIEW_MM:
        shown = " x ".join(f"{f:g}" for f in fov)
        raise InputError(
            path,
            f"field of view {shown} mm is larger than {MAX_FIELD_OF_VIEW_MM:g} mm",
            "check the header's dimensions and voxel sizes",
        )
    if min(shape[:3]) < MIN_SPATIAL_VOXELS:
        grid = "x".join(str(n) for n in shape[:3])
        raise InputError(
            path,
            f"image grid is {grid} voxels; at least {MIN_SPATIAL_VOXELS} are needed along each "
            "spatial axis",
        )
    return shape, dtype


def _inflate_capped(path: Path, expected: int, slack: int = GZIP_SLACK_BYTES) -> bytearray:
    """The first ``expected`` bytes of a gzip file, refusing a stream that holds more or less.

    Written here rather than left to nibabel or ``gzip``: those inflate as much as they are
    asked for, so checking that the stream ends where the header says would mean inflating it
    whole. This fills one buffer of ``expected`` bytes and counts, without keeping, at most
    ``slack`` more before refusing; members written one after another (bgzip) are followed,
    and each member's CRC is checked when it ends, as ``gzip`` does.
    """
    out = bytearray(expected)
    view = memoryview(out)
    filled = extra = 0
    inflater = zlib.decompressobj(31)
    pending = b""
    with open(path, "rb") as fh:
        while True:
            if not pending:
                pending = fh.read(_GZIP_CHUNK)
                if not pending:
                    break
            if inflater.eof:  # another member (bgzip), after optional zero padding
                pending = pending.lstrip(b"\x00")
                if not pending:
                    continue
                if not b"\x1f\x8b".startswith(pending[:2]):
                    raise zlib.error("data after the end of the gzip stream")
                inflater = zlib.decompressobj(31)
            piece = inflater.decompress(pending, _GZIP_CHUNK)
            pending = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            n = min(len(piece), expected - filled)
            view[filled : filled + n] = piece[:n]
            filled += n
            extra += len(piece) - n
            if extra > slack:
                raise InputError(
                    path,
                    f"the gzip stream holds more than the {_describe_bytes(expected)} its NIfTI "
                    "header declares (refused without inflating it)",
                    "convert the image again",
                )
    if not inflater.eof:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")
    if filled < expected:
        raise EOFError(f"expected {expected} bytes of image data, got {filled}")
    return out


def load_image(path: Path) -> tuple[Any, np.ndarray]:
    """Header and unscaled voxel array of a checked NIfTI file; every problem an ``InputError``.

    The array is the one nibabel's ``dataobj.get_unscaled()`` gives (data type on disk, Fortran
    order); for ``.nii.gz`` it is inflated by ``_inflate_capped``.
    """
    path = Path(path)
    check_header(path, read_header(path))
    try:
        img = nib.load(path)
    except Exception as err:
        raise InputError(path, f"cannot read the NIfTI header ({err})") from err
    proxy = img.dataobj
    try:
        if _is_gzip(path):
            shape, dtype, offset = proxy.shape, proxy.dtype, int(proxy.offset)
            n_bytes = math.prod(shape) * dtype.itemsize
            raw = _inflate_capped(path, offset + n_bytes)
            data = np.ndarray(shape, dtype, buffer=raw, offset=offset, order="F")
        else:
            data = np.asanyarray(proxy.get_unscaled())
    except (EOFError, OSError, zlib.error, gzip.BadGzipFile, ValueError) as err:
        raise InputError(
            path,
            f"image data is truncated or corrupt ({type(err).__name__}: {err})",
            "copy or convert the file again",
        ) from err
    return img, data
