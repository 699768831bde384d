"""sensor_msgs/Image and CompressedImage -> HxWx3 uint8 RGB numpy arrays, without cv_bridge.

(PyPI's `cv-bridge` is the ROS 1 package and breaks on numpy 2.) Works on the message's fields, so it
is usable and testable without rclpy. Arrays are views of the message buffer where the encoding
allows (rgb8, and bgr8/bgra8/rgba8 as strided views); the preprocessor makes the one copy it needs.
Bad input raises `ImageConversionError` with a message fit for a log line and diagnostics.
"""
from __future__ import annotations

import io

import numpy as np


class ImageConversionError(ValueError):
    """The image message cannot be turned into an RGB array (unsupported or inconsistent)."""


# encoding -> (channels, bytes per channel)
ENCODINGS = {
    "rgb8": (3, 1), "bgr8": (3, 1), "rgba8": (4, 1), "bgra8": (4, 1), "mono8": (1, 1), "mono16": (1, 2),
    "yuv422": (2, 1), "uyvy": (2, 1), "yuv422_yuy2": (2, 1), "yuyv": (2, 1),
}
MAX_PIXELS = 8192 * 8192  # far above any camera; bounds the memory a malformed header could claim


def image_to_rgb(encoding: str, height: int, width: int, step: int, data, is_bigendian: bool = False,
                 max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The fields of a sensor_msgs/Image -> HxWx3 uint8 RGB (alpha dropped, mono replicated)."""
    enc = encoding.lower()
    if enc not in ENCODINGS:
        raise ImageConversionError(f"unsupported image encoding {encoding!r}; supported: {', '.join(sorted(ENCODINGS))}")
    if height <= 0 or width <= 0:
        raise ImageConversionError(f"empty image ({width}x{height})")
    if height * width > max_pixels:
        raise ImageConversionError(f"image {width}x{height} is larger than the limit of {max_pixels} pixels")
    channels, depth = ENCODINGS[enc]
    row = width * channels * depth
    if step < row:
        raise ImageConversionError(f"step {step} is smaller than width*bytes per pixel = {row} ({encoding}, width {width})")
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data.reshape(-1).view(np.uint8)
    if buf.size < step * (height - 1) + row:
        raise ImageConversionError(f"data has {buf.size} bytes; {width}x{height} {encoding} with step {step} needs "
                                   f"{step * (height - 1) + row}")
    # rows of `step` bytes, of which the first `row` are pixels (the padding is skipped by a view)
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row), strides=(step, 1))
    if enc in ("rgb8", "bgr8", "rgba8", "bgra8"):
        px = rows.reshape(height, width, channels)
        return px[..., :3] if enc[:3] == "rgb" else px[..., 2::-1]
    if enc == "mono8":
        return np.repeat(rows[..., None], 3, axis=2)
    if enc == "mono16":
        v = rows.view(">u2" if is_bigendian else "<u2").reshape(height, width)
        return np.repeat((v >> 8).astype(np.uint8)[..., None], 3, axis=2)  # keep the top 8 bits
    if width % 2:
        raise ImageConversionError(f"{encoding} images need an even width, got {width}")
    return _yuv422_to_rgb(rows.reshape(height, width // 2, 4), enc)


def _yuv422_to_rgb(quads: np.ndarray, enc: str) -> np.ndarray:
    """BT.601 limited range, as OpenCV's COLOR_YUV2RGB_UYVY/_YUY2 (what cv_bridge uses)."""
    q = quads.astype(np.float32)
    if enc in ("yuv422", "uyvy"):  # U Y0 V Y1
        u, y0, v, y1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    else:  # yuv422_yuy2 / yuyv: Y0 U Y1 V
        y0, u, y1, v = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    y = np.stack([y0, y1], axis=-1).reshape(q.shape[0], -1) - 16.0
    u = np.repeat(u, 2, axis=1) - 128.0
    v = np.repeat(v, 2, axis=1) - 128.0
    r = 1.164 * y + 1.596 * v
    g = 1.164 * y - 0.392 * u - 0.813 * v
    b = 1.164 * y + 2.017 * u
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def compressed_to_rgb(fmt: str, data, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/CompressedImage (jpeg or png, as image_transport's compressed plugin writes it)."""
    from PIL import Image, UnidentifiedImageError

    raw = bytes(data)
    if not raw:
        raise ImageConversionError("compressed image has no data")
    f = fmt.lower()
    if f and not any(k in f for k in ("jpeg", "jpg", "png")):
        raise ImageConversionError(f"unsupported compressed format {fmt!r} (jpeg and png are supported)")
    try:
        with Image.open(io.BytesIO(raw)) as im:
            if im.width * im.height > max_pixels:  # checked from the header, before decoding
                raise ImageConversionError(f"compressed image {im.width}x{im.height} is larger than the limit of "
                                           f"{max_pixels} pixels")
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as e:
        raise ImageConversionError(f"cannot decode {fmt or 'compressed'} image: {e}") from None


def image_msg_to_rgb(msg, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 RGB."""
    return image_to_rgb(msg.encoding, msg.height, msg.width, msg.step, msg.data, bool(msg.is_bigendian), max_pixels)


def to_rgb(msg, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage (told apart by the `format` field) -> HxWx3 uint8 RGB."""
    if hasattr(msg, "format"):
        return compressed_to_rgb(msg.format, msg.data, max_pixels)
    return image_msg_to_rgb(msg, max_pixels)
