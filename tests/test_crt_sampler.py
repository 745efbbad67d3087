"""The decoder's sampler reads the same samples as plain slicing of each plane.

``video._PlaneSampler`` builds one strided view per plane over the decoder's buffer; it is held
here to the plain way (every sample picked by its row and column index from the plane reshaped to
``line_size`` columns) on random planes of odd sizes, every planar 8-bit layout, sampling steps
that divide the chroma subsampling and steps that do not, and all four turns.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from mottling.crt import video


def _plain(frame, sampler, sub):
    k, o, h, w = sampler.k, sampler.off, sampler.h, sampler.w
    out = []
    for c, plane in enumerate(frame.planes[:3]):
        sx, sy = (1, 1) if c == 0 else sub
        rows = np.frombuffer(plane, np.uint8)[:plane.line_size * plane.height]
        rows = rows.reshape(plane.height, plane.line_size)
        ys, xs = (o + k * np.arange(h)) // sy, (o + k * np.arange(w)) // sx
        out.append(np.rot90(rows[ys[:, None], xs[None, :]], sampler.turn))
    return np.stack(out)


@pytest.mark.parametrize("fmt", ["yuv420p", "yuvj420p", "yuv422p", "yuv444p"])
@pytest.mark.parametrize("size", [(37, 23, 8, 6), (64, 48, 16, 12), (101, 77, 20, 15),
                                  (30, 40, 30, 40), (90, 60, 30, 20)])
def test_sampler_matches_plain_indexing(fmt, size):
    width, height, w, h = size
    rng = np.random.default_rng(width * height)
    for turn in range(4):
        frame = av.VideoFrame(width, height, fmt)
        for plane in frame.planes:
            plane.update(rng.integers(0, 256, plane.buffer_size, dtype=np.uint8).tobytes())
        sampler = video._PlaneSampler(width, height, w, h)
        sampler.turn = turn
        out = np.full((3,) + sampler.shape, 7, dtype=np.uint8)
        sampler.sample(frame, out)
        want = _plain(frame, sampler, video.PLANAR_8BIT[fmt])
        assert out.shape == want.shape
        assert out.tobytes() == want.tobytes()
