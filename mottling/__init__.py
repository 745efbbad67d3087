"""Mottling: skin mottling score and capillary refill time from phone media (research use only)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mottling")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
