"""The preflight refuses hostile inputs from their headers, in one line naming the file (#13).

Each test builds one hostile file in tmp_path; the fuzz test damages headers and sidecars at
random and expects every case to pass or raise ``InputError``, never anything else.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from taupet_bids import image_headers
from taupet_bids.bids import (
    MAX_SIDECAR_BYTES,
    MIN_NONZERO_FRACTION,
    check_pet_scan,
    check_t1w,
)
from taupet_bids.errors import InputError
from tests.test_bids import pet_image, sidecar, write_scan

PET = "sub-01_trc-FTP_pet.nii.gz"
JSON = "sub-01_trc-FTP_pet.json"


def refused(call, *words) -> str:
    with pytest.raises(InputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def refused_scan(scan, *words) -> str:
    return refused(lambda: check_pet_scan(scan), *words)


def nifti2_bytes(shape, datatype=16, vox_offset=544, pixdim=2.0) -> bytes:
    """A bare NIfTI-2 header (540 bytes + 4 extension bytes) declaring ``shape``."""
    header = nib.Nifti2Header()
    header.set_data_shape((1,) * len(shape))
    header["dim"][0] = len(shape)
    header["dim"][1 : 1 + len(shape)] = shape
    header["datatype"] = datatype
    header["bitpix"] = 32
    header["pixdim"][1:4] = pixdim
    header["vox_offset"] = vox_offset
    header["sform_code"] = 1
    header.set_sform(np.diag([pixdim, pixdim, pixdim, 1.0]), code=1)
    return header.binaryblock + b"\x00" * 4


# --------------------------------------------------------------------------------------------
# 1. orientation


def test_pet_without_orientation_is_refused(tmp_path):
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(pet_image().get_fdata(), None))
    header = nib.load(scan.pet).header
    assert header["sform_code"] == header["qform_code"] == 0
    refused_scan(scan, PET, "no orientation", "sform_code and qform_code are both 0")


def test_t1w_without_orientation_is_refused(tmp_path):
    path = tmp_path / "sub-01_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 16)), None), path)
    refused(lambda: check_t1w(path), "sub-01_T1w.nii.gz", "no orientation")


# --------------------------------------------------------------------------------------------
# 2. voxel sizes, field of view, degenerate grids


def test_voxel_sizes_scaled_by_1e5_are_refused(tmp_path):
    scan = write_scan(
        tmp_path, sidecar(), nib.Nifti1Image(pet_image().get_fdata(), np.diag([2e5, 2e5, 2e5, 1]))
    )
    refused_scan(scan, PET, "voxel size 200000 x 200000 x 200000 mm", "outside 0.1-20 mm")


def test_t1w_voxel_sizes_outside_range_are_refused(tmp_path):
    path = tmp_path / "sub-01_T1w.nii.gz"
    data = np.random.default_rng(0).random((16, 16, 16)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([0.001, 0.001, 0.001, 1])), path)
    refused(lambda: check_t1w(path), "sub-01_T1w.nii.gz", "voxel size", "outside")


@pytest.mark.parametrize("zoom", [0.0, np.nan])
def test_zero_or_nan_voxel_size_is_refused(tmp_path, zoom):
    img = pet_image()
    img.header["pixdim"][2] = zoom
    scan = write_scan(tmp_path, sidecar(), img)
    refused_scan(scan, PET, "voxel size", "pixdim")


def test_singular_affine_is_refused(tmp_path):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 1] = affine[:3, 0]  # two axes point the same way
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(pet_image().get_fdata(), affine))
    refused_scan(scan, PET, "singular")


def test_field_of_view_beyond_two_metres_is_refused(tmp_path):
    data = np.random.default_rng(0).uniform(1, 2, (8, 8, 120, 6)).astype(np.float32)
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(data, np.diag([20, 20, 20, 1])))
    refused_scan(scan, PET, "field of view", "2400", "2000 mm")


def test_two_by_two_by_two_image_is_refused(tmp_path):
    data = np.random.default_rng(0).uniform(1, 2, (2, 2, 2, 6)).astype(np.float32)
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(data, np.diag([2, 2, 2, 1])))
    refused_scan(scan, PET, "image grid is 2x2x2 voxels")


# --------------------------------------------------------------------------------------------
# 3. and 18. frame timing and types


def test_overlapping_frames_are_refused(tmp_path):
    meta = sidecar()
    meta["FrameTimesStart"][3] -= 100  # frame 2 ends 100 s after frame 3 starts
    refused_scan(write_scan(tmp_path, meta), JSON, "frames 2 and 3 overlap")


def test_frame_duration_holding_end_times_is_refused(tmp_path):
    """As in the official BIDS examples that give FrameDuration as each frame's end time."""
    starts = [4500, 4800, 5100, 5400, 5700, 6000]
    meta = sidecar(FrameTimesStart=starts, FrameDuration=[*starts[1:], 6300])
    refused_scan(write_scan(tmp_path, meta), JSON, "FrameDuration holds frame end times")


def test_frame_duration_as_end_times_from_zero_is_refused(tmp_path):
    starts = [0, 300, 600, 900, 1200, 1500]
    meta = sidecar(FrameTimesStart=starts, FrameDuration=[*starts[1:], 1800])
    refused_scan(write_scan(tmp_path, meta), JSON, "FrameDuration holds frame end times")


def test_negative_duration_is_refused(tmp_path):
    meta = sidecar()
    meta["FrameDuration"][1] = -300
    refused_scan(write_scan(tmp_path, meta), JSON, "zero or negative duration")


def test_gaps_between_frames_are_allowed(tmp_path):
    meta = sidecar(n_frames=4, start_s=80 * 60, FrameDuration=[290, 290, 290, 290])
    assert check_pet_scan(write_scan(tmp_path, meta, pet_image((8, 8, 6, 4)))).frames


@pytest.mark.parametrize("key", ["FrameDuration", "FrameTimesStart"])
def test_boolean_frame_values_are_refused_with_their_type(tmp_path, key):
    meta = sidecar()
    meta[key] = [True] * 6
    message = refused_scan(write_scan(tmp_path, meta), JSON, key, "JSON boolean (true)")
    assert "overlap" not in message


def test_huge_frame_times_are_refused(tmp_path):
    meta = sidecar()
    meta["FrameTimesStart"] = [1e300 + i for i in range(6)]
    refused_scan(write_scan(tmp_path, meta), JSON, "FrameTimesStart holds 1e+300 s")


def test_integer_beyond_the_digit_limit_is_refused(tmp_path):
    text = json.dumps(sidecar()).replace('"FrameDuration": [300', '"FrameDuration": [' + "9" * 5000)
    refused_scan(write_scan(tmp_path, text), JSON, "not usable JSON")


def test_non_finite_injection_start_is_refused(tmp_path):
    text = json.dumps(sidecar(InjectionStart=0)).replace(
        '"InjectionStart": 0', '"InjectionStart": 1e999'
    )
    refused_scan(write_scan(tmp_path, text), JSON, "InjectionStart inf s")


# --------------------------------------------------------------------------------------------
# 8. and 9. sizes declared in the header; gzip bombs


def test_nifti2_header_declaring_100000_cubed_voxels_is_refused_from_the_header(tmp_path):
    scan = write_scan(tmp_path, sidecar())
    scan.pet.write_bytes(gzip.compress(nifti2_bytes((100000, 100000, 100000, 4))))
    message = refused_scan(scan, PET, "100000x100000x100000x4 voxels", "more than the 4 GiB")
    assert "MemoryError" not in message


def test_vox_offset_beyond_the_header_cap_is_refused(tmp_path):
    scan = write_scan(tmp_path, sidecar())
    scan.pet.write_bytes(gzip.compress(nifti2_bytes((8, 8, 6, 6), vox_offset=2**40)))
    refused_scan(scan, PET, "vox_offset")


def test_extension_with_a_zero_size_is_refused_before_nibabel_reads_it(tmp_path):
    raw = bytearray(gzip.decompress(write_scan(tmp_path, sidecar()).pet.read_bytes()))
    raw[348:352] = b"\x01\x00\x00\x00"  # "extensions follow"
    raw[108:112] = struct.pack("<f", 352 + 32)  # room for one 32-byte extension
    raw[352:352] = struct.pack("<ii", 0, 6) + b"\x00" * 24  # esize 0: nibabel would read(-8)
    scan = write_scan(tmp_path, sidecar())
    scan.pet.write_bytes(gzip.compress(bytes(raw)))
    refused_scan(scan, PET, "cannot read the NIfTI header", "extension")


def _bomb(path: Path, header: bytes, n_zero_bytes: int) -> None:
    """``header`` followed by ``n_zero_bytes`` zeros, streamed into a small .nii.gz."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\x00" * 2**24
    with open(path, "wb") as fh:
        fh.write(packer.compress(header))
        for _ in range(n_zero_bytes // len(block)):
            fh.write(packer.compress(block))
        fh.write(packer.flush())


def test_gzip_bomb_declared_in_the_header_is_refused(tmp_path):
    scan = write_scan(tmp_path, sidecar())
    _bomb(scan.pet, nifti2_bytes((2048, 2048, 1024, 6)), 2**26)
    assert scan.pet.stat().st_size < 2**20
    refused_scan(scan, PET, "2048x2048x1024x6 voxels", "more than the 4 GiB")


BOMB_SCRIPT = """
import resource, sys
from pathlib import Path
from taupet_bids.errors import InputError
from taupet_bids.image_headers import load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_image(Path(sys.argv[1]))
except InputError as err:
    print(err)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024)
"""


def test_gzip_stream_longer_than_its_header_is_refused_without_inflating_it(tmp_path):
    """1 GiB of zeros behind a header that declares 32x32x16x6 float32: refused by streaming.

    Inflating the whole stream would take a GiB of memory; the capped reader stops a slack
    (1 MiB) past the declared size, so the child's peak memory grows by a few MiB only.
    """
    scan = write_scan(tmp_path, sidecar())
    n_bytes = 32 * 32 * 16 * 6 * 4
    _bomb(scan.pet, nifti2_bytes((32, 32, 16, 6)), 2**30)
    assert scan.pet.stat().st_size < 2**21
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, str(scan.pet)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    message, grown_mib = done.stdout.strip().splitlines()
    assert message.startswith(PET) and "gzip stream holds more than" in message, message
    assert int(grown_mib) < 64 + n_bytes // 2**20, grown_mib
    assert time.monotonic() - start < 10


def test_gzip_within_the_slack_is_read_like_nibabel(tmp_path):
    img = pet_image()
    scan = write_scan(tmp_path, sidecar(), img)
    raw = gzip.decompress(scan.pet.read_bytes())
    scan.pet.write_bytes(gzip.compress(raw + b"\x00" * 1000))
    loaded, data = image_headers.load_image(scan.pet)
    expected = np.asanyarray(nib.load(scan.pet).dataobj.get_unscaled())
    assert data.dtype == expected.dtype and np.array_equal(data, expected)


def test_multi_member_gzip_is_read_like_nibabel(tmp_path):
    scan = write_scan(tmp_path, sidecar(), pet_image())
    raw = gzip.decompress(scan.pet.read_bytes())
    scan.pet.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    _, data = image_headers.load_image(scan.pet)
    assert np.array_equal(data, np.asanyarray(nib.load(scan.pet).dataobj.get_unscaled()))


def test_valid_images_are_read_exactly_as_nibabel_reads_them(tmp_path):
    rng = np.random.default_rng(3)
    for i, (dtype, ext) in enumerate(
        [(np.float32, ".nii.gz"), (">i2", ".nii.gz"), (np.float64, ".nii"), (np.uint8, ".nii")]
    ):
        path = tmp_path / f"img{i}{ext}"
        img = nib.Nifti1Image(rng.uniform(1, 100, (9, 8, 7, 2)).astype(dtype), np.eye(4))
        img.header.set_slope_inter(2.0, 1.0)
        nib.save(img, path)
        _, data = image_headers.load_image(path)
        expected = np.asanyarray(nib.load(path).dataobj.get_unscaled())
        assert data.dtype == expected.dtype and data.shape == expected.shape
        assert np.array_equal(data, expected)


# --------------------------------------------------------------------------------------------
# 10. sidecars: size and nesting


def test_sidecar_nested_200000_levels_is_refused(tmp_path):
    text = "[" * 200_000 + "]" * 200_000
    refused_scan(write_scan(tmp_path, text), JSON, "nested more than 16 levels")


def test_sidecar_nested_below_the_recursion_limit_is_refused(tmp_path):
    deep: list = [1]
    for _ in range(20):
        deep = [deep]
    refused_scan(write_scan(tmp_path, sidecar(Deep=deep)), JSON, "nested more than 16 levels")


def test_sidecar_over_the_size_cap_is_refused(tmp_path):
    scan = write_scan(tmp_path, sidecar(Padding="x" * MAX_SIDECAR_BYTES))
    refused_scan(scan, JSON, "more than the 1048576 taupet-bids reads")


# --------------------------------------------------------------------------------------------
# 17. images with nothing in them


def test_single_non_zero_voxel_is_refused(tmp_path):
    data = np.zeros((32, 32, 16, 6), np.float32)
    data[10, 10, 8, :] = 1000
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(data, np.diag([2, 2, 2, 1])))
    refused_scan(scan, PET, "only 6 of 98304 voxels are non-zero")


def test_negated_intensities_are_refused(tmp_path):
    data = -pet_image().get_fdata(dtype=np.float32)
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(data, np.diag([2, 2, 2, 1])))
    refused_scan(scan, PET, "most non-zero voxels are negative", "negated")


def test_negative_slope_counts_as_negated(tmp_path):
    img = pet_image()
    img.header.set_slope_inter(-1.0, 0.0)
    scan = write_scan(tmp_path, sidecar(), img)
    refused_scan(scan, PET, "negative")


def test_some_zeros_and_negative_noise_are_allowed(tmp_path):
    data = pet_image().get_fdata(dtype=np.float32)
    data[:4] = 0
    data[4, :, :, :] *= -0.01
    assert MIN_NONZERO_FRACTION < 0.5
    scan = write_scan(tmp_path, sidecar(), nib.Nifti1Image(data, np.diag([2, 2, 2, 1])))
    assert check_pet_scan(scan).frames


def test_single_non_zero_voxel_t1w_is_refused(tmp_path):
    path = tmp_path / "sub-01_T1w.nii.gz"
    data = np.zeros((32, 32, 32), np.float32)
    data[3, 4, 5] = 1
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    refused(lambda: check_t1w(path), "sub-01_T1w.nii.gz", "non-zero")


# --------------------------------------------------------------------------------------------
# Fuzz: random damage either passes or is an InputError


_NESTED: list = []
for _level in range(30):
    _NESTED = [_NESTED]


def _random_json_value(rng: np.random.Generator):
    choices = [
        True, False, None, "", "abc", "300", [], {}, [[1, 2]], {"a": 1}, -1, 0, 1e308, -1e308,
        10**30, [True], ["x"], [None], [1e308] * 6, _NESTED,
    ]  # fmt: skip
    return choices[int(rng.integers(len(choices)))]


def _fuzz_sidecar(rng: np.random.Generator) -> dict | str:
    meta = sidecar()
    keys = [*meta, "FrameTimesStart", "FrameDuration", "Units", "TracerName", "InjectionStart"]
    for _ in range(int(rng.integers(1, 4))):
        key = keys[int(rng.integers(len(keys)))]
        if key in ("FrameTimesStart", "FrameDuration") and rng.random() < 0.5:
            values = list(meta[key])
            values[int(rng.integers(len(values)))] = _random_json_value(rng)
            meta[key] = values
        else:
            meta[key] = _random_json_value(rng)
    if rng.random() < 0.2:
        text = json.dumps(meta)
        cut = int(rng.integers(len(text)))
        return text[:cut] + text[cut + 1 :]
    return meta


def _fuzz_image(rng: np.random.Generator, template: bytes) -> bytes:
    raw = bytearray(template)
    if rng.random() < 0.7:  # flip bytes of the decompressed header, then compress again
        for _ in range(int(rng.integers(1, 6))):
            raw[int(rng.integers(352))] = int(rng.integers(256))
        return gzip.compress(bytes(raw), compresslevel=1)
    blob = bytearray(gzip.compress(bytes(raw), compresslevel=1))
    for _ in range(int(rng.integers(1, 6))):
        blob[int(rng.integers(len(blob)))] = int(rng.integers(256))
    return bytes(blob)


def test_fuzzed_headers_and_sidecars_pass_or_raise_input_error(tmp_path):
    rng = np.random.default_rng(20261204)
    template = gzip.decompress(write_scan(tmp_path / "template", sidecar()).pet.read_bytes())
    outcomes = {"passed": 0, "refused": 0}
    start = time.monotonic()
    for case in range(200):
        folder = tmp_path / f"case{case}"
        scan = write_scan(folder, sidecar() if case % 2 else _fuzz_sidecar(rng))
        if case % 2 or rng.random() < 0.3:
            scan.pet.write_bytes(_fuzz_image(rng, template))
        try:
            check_pet_scan(scan)
            outcomes["passed"] += 1
        except InputError as err:
            assert "\n" not in str(err)
            assert str(err).startswith("sub-01_trc-FTP_pet."), str(err)
            outcomes["refused"] += 1
        try:  # the T1w shares the image checks; a 4D image is refused as one too
            check_t1w(scan.pet)
        except InputError as err:
            assert str(err).startswith("sub-01_trc-FTP_pet.nii.gz: "), str(err)
    assert outcomes["refused"] > 50 and outcomes["passed"] > 5, outcomes
    assert time.monotonic() - start < 20


def test_frames_listed_out_of_order_without_overlap_are_allowed(tmp_path):
    meta = sidecar()
    order = [1, 0, 2, 3, 4, 5]
    meta["FrameTimesStart"] = [meta["FrameTimesStart"][i] for i in order]
    assert check_pet_scan(write_scan(tmp_path, meta)).frames == (0, 2, 3, 4)  # 80-100 min
