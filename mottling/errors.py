"""Exceptions with a user-facing message and the HTTP status they map to.

Every bad input becomes exactly one of these, so the CLI can print one line, the server can answer
with an honest status code and the batch runner can write one error row.
"""


class MottlingError(Exception):
    """Base class. ``str(err)`` is the one clear message shown to the user."""

    http_status = 500


class InputError(MottlingError):
    """The input cannot be used (corrupt, truncated, empty, wrong kind)."""

    http_status = 400


class UnsupportedMediaError(InputError):
    """The bytes are not a format we read (not an image, no video stream, audio only)."""

    http_status = 415


class InputTooLargeError(InputError):
    """The input exceeds a hard limit (bytes, pixels, frames or duration)."""

    http_status = 413


class UnprocessableInputError(InputError):
    """Well-formed input whose content cannot be analysed (e.g. a single video frame)."""

    http_status = 422


class ModelError(MottlingError):
    """The model is missing, fails its hash check or cannot be loaded."""

    http_status = 503
