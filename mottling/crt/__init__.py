"""Capillary refill time from a press-and-release video (definitions: docs/design.md).

``measure_crt`` decodes the video with its own timestamps, finds the pressed spot, normalises its
colour against the unpressed skin around it, detects the release, fits the recovery and applies the
quality gates.
"""

from mottling.crt.gates import DEFAULT_GATES, QualityGates
from mottling.crt.measure import measure_crt
from mottling.crt.video import DecodedVideo, VideoLimits, decode_video

__all__ = ["measure_crt", "decode_video", "DecodedVideo", "VideoLimits", "QualityGates",
           "DEFAULT_GATES"]
