"""Image message conversions (pure numpy; no rclpy needed)."""
import io

import numpy as np
import pytest
from PIL import Image

from locate_ros.ros.conversions import (
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
)

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)


def padded(rows: np.ndarray, pad: int) -> tuple[bytes, int]:
    """Rows as bytes with `pad` junk bytes after each row (as drivers with aligned strides send)."""
    h = rows.shape[0]
    flat = rows.reshape(h, -1)
    out = np.concatenate([flat, np.full((h, pad), 77, np.uint8)], axis=1)
    return out.tobytes(), out.shape[1]


@pytest.mark.parametrize("pad", [0, 3])
def test_rgb_family_is_exact(pad):
    alpha = RNG.integers(0, 256, size=(5, 6, 1), dtype=np.uint8)
    cases = {"rgb8": RGB, "bgr8": RGB[..., ::-1], "rgba8": np.concatenate([RGB, alpha], 2),
             "bgra8": np.concatenate([RGB[..., ::-1], alpha], 2)}
    for enc, pixels in cases.items():
        data, step = padded(np.ascontiguousarray(pixels), pad)
        out = image_to_rgb(enc, 5, 6, step, data)
        assert out.shape == (5, 6, 3) and out.dtype == np.uint8
        assert np.array_equal(out, RGB), enc


def test_rgb8_is_a_view_of_the_message_buffer():
    buf = np.frombuffer(RGB.tobytes(), np.uint8)
    out = image_to_rgb("rgb8", 5, 6, 18, buf)
    assert np.shares_memory(out, buf)


def test_mono_encodings():
    gray = RGB[..., 0]
    assert np.array_equal(image_to_rgb("mono8", 5, 6, 6, gray.tobytes()), np.repeat(gray[..., None], 3, 2))
    wide = gray.astype(np.uint16) * 257  # v * 257 >> 8 == v
    for big in (False, True):
        data = wide.astype(">u2" if big else "<u2").tobytes()
        assert np.array_equal(image_to_rgb("mono16", 5, 6, 12, data, is_bigendian=big)[..., 1], gray)


@pytest.mark.parametrize("enc", ["yuv422", "yuv422_yuy2"])
def test_yuv422_matches_bt601_within_rounding(enc):
    # encode a flat-colour image (constant chroma per pixel pair) with BT.601 limited range
    rgb = np.tile(np.array([[200, 40, 90]], np.float32), (2, 4, 1))
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    y, u, v = (np.rint(c).astype(np.uint8) for c in (y, u, v))
    if enc == "yuv422":  # U Y0 V Y1
        quads = np.stack([u[:, ::2], y[:, ::2], v[:, ::2], y[:, 1::2]], -1)
    else:  # Y0 U Y1 V
        quads = np.stack([y[:, ::2], u[:, ::2], y[:, 1::2], v[:, ::2]], -1)
    out = image_to_rgb(enc, 2, 4, 8, quads.tobytes())
    assert out.shape == (2, 4, 3) and np.abs(out.astype(int) - rgb.astype(int)).max() <= 2


def test_compressed_jpeg_and_png():
    for fmt in ("png", "rgb8; jpeg compressed bgr8"):
        bio = io.BytesIO()
        Image.fromarray(RGB).save(bio, format="PNG" if fmt == "png" else "JPEG", quality=95)
        out = compressed_to_rgb(fmt, bio.getvalue())
        assert out.shape == (5, 6, 3)
        if fmt == "png":
            assert np.array_equal(out, RGB)


@pytest.mark.parametrize("args,match", [
    (("rgb16", 5, 6, 36, b"\0" * 180), "unsupported image encoding"),
    (("rgb8", 0, 6, 18, b""), "empty image"),
    (("rgb8", 5, 6, 17, b"\0" * 200), "step 17 is smaller"),
    (("rgb8", 5, 6, 18, b"\0" * 89), "needs 90"),
    (("yuv422", 2, 3, 6, b"\0" * 12), "even width"),
    (("mono8", 100000, 100000, 100000, b""), "larger than"),
])
def test_inconsistent_images_raise_clear_errors(args, match):
    with pytest.raises(ImageConversionError, match=match):
        image_to_rgb(*args)


def test_bad_compressed_images_raise_clear_errors():
    with pytest.raises(ImageConversionError, match="no data"):
        compressed_to_rgb("jpeg", b"")
    with pytest.raises(ImageConversionError, match="cannot decode"):
        compressed_to_rgb("jpeg", b"not a jpeg")
    with pytest.raises(ImageConversionError, match="unsupported compressed format"):
        compressed_to_rgb("tiff", b"II*\0")
