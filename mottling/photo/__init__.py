"""The mottling score from a photo of the leg: decode, quality flags, model input, inference, overlay.

``load_photo`` is the one road from a file to the pixels a model sees (EXIF orientation, the
draft-size rule, hard limits); training, evaluation, the CLI, batch and the HTTP service all use
it. ``load_model`` verifies an ONNX model against its card; ``score_files`` decodes and scores
files. See docs/design.md for the score's definition and the JSON contract.
"""

from mottling.photo.decode import DEFAULT_LIMITS, ImageLimits, Photo, decode_image, load_photo
from mottling.photo.model import MottlingModel, iter_scored, load_model, score_files

__all__ = ["load_photo", "decode_image", "Photo", "ImageLimits", "DEFAULT_LIMITS", "load_model",
           "MottlingModel", "score_files", "iter_scored"]
