"""YUV to RGB in float64, for colour means taken in the decoder's own YUV.

Means are linear, so the mean RGB of a region is the affine transform of its mean YUV: converting
after averaging keeps the fractional code values a slow colour change produces, where a per-pixel
8-bit RGB conversion would round them into steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class YuvMatrix:
    """Y'CbCr coefficients (Kr, Kb) and the code range (limited 16-235 or full 0-255)."""

    kr: float
    kb: float
    full_range: bool

    def to_rgb(self, yuv: np.ndarray) -> np.ndarray:
        """(..., 3) Y, U, V codes to (..., 3) R, G, B in 0..255 (not clipped), same float dtype."""
        dtype = yuv.dtype if np.issubdtype(yuv.dtype, np.floating) else np.float64
        yuv = np.asarray(yuv, dtype=dtype)
        if self.full_range:
            y, cs = yuv[..., 0], 1.0
        else:
            y, cs = (yuv[..., 0] - 16.0) * (255.0 / 219.0), 255.0 / 224.0
        u = (yuv[..., 1] - 128.0) * cs
        v = (yuv[..., 2] - 128.0) * cs
        kr, kb = self.kr, self.kb
        kg = 1.0 - kr - kb
        r = y + 2.0 * (1.0 - kr) * v
        b = y + 2.0 * (1.0 - kb) * u
        g = (y - kr * r - kb * b) / kg
        return np.stack([r, g, b], axis=-1).astype(dtype, copy=False)

    def rgb_upper_bound(self, y_max, u_min, u_max, v_min, v_max) -> np.ndarray:
        """(..., 3) upper bounds of R, G, B over pixels whose codes lie in the given ranges, in
        exact arithmetic (float64; the conversion is affine and R, B rise with Y and V, U while
        G rises with Y and falls with U and V). ``to_rgb`` in float32 stays within 0.01 of the
        exact values, so a bound below 249 proves that no pixel reaches 250."""
        y_max, u_min, u_max, v_min, v_max = (np.asarray(a, dtype=np.float64)
                                             for a in (y_max, u_min, u_max, v_min, v_max))
        if self.full_range:
            y, cs = y_max, 1.0
        else:
            y, cs = (y_max - 16.0) * (255.0 / 219.0), 255.0 / 224.0
        kr, kb = self.kr, self.kb
        kg = 1.0 - kr - kb
        r = y + 2.0 * (1.0 - kr) * cs * (v_max - 128.0)
        b = y + 2.0 * (1.0 - kb) * cs * (u_max - 128.0)
        g = (y - 2.0 * kr * (1.0 - kr) / kg * cs * (v_min - 128.0)
             - 2.0 * kb * (1.0 - kb) / kg * cs * (u_min - 128.0))
        return np.stack([r, g, b], axis=-1)

    def luma(self, y_codes: np.ndarray) -> np.ndarray:
        """Y codes to 0..255 luma."""
        y = np.asarray(y_codes, dtype=np.float64)
        return y if self.full_range else (y - 16.0) * (255.0 / 219.0)


BT601_LIMITED = YuvMatrix(0.299, 0.114, False)
BT709 = (0.2126, 0.0722)
BT2020 = (0.2627, 0.0593)


def matrix_for(frame) -> YuvMatrix:
    """The matrix a decoded PyAV frame declares; unspecified means BT.601 (what swscale assumes).

    BT.2020 (an iPhone's HDR video) is read with its non-constant-luminance coefficients, also
    for the rare constant-luminance tag, whose exact inverse is not affine.
    """
    space = int(getattr(frame, "colorspace", 2) or 2)
    crange = int(getattr(frame, "color_range", 0) or 0)
    full = crange == 2 or frame.format.name.startswith("yuvj")
    kr, kb = BT709 if space == 1 else BT2020 if space in (9, 10) else (0.299, 0.114)
    return YuvMatrix(kr, kb, full)
