"""The mottling score (Ait-Oufella 2011), CRT thresholds and the I-MICRO hypoperfusion rule.

The score is set by how far mottled skin extends from the centre of the knee towards the groin.
Extents are measured along the leg axis in a landmark coordinate ``u``: 0 at the centre of the knee,
growing towards the groin fold. The generator and the label checks both use these functions, so the
definition lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SCALE_VERSION = "ait-oufella-2011/1"
SCORES = (0, 1, 2, 3, 4, 5)
N_CLASSES = len(SCORES)   # a model has one output per score
Site = Literal["finger", "knee"]
SITES: tuple[str, ...] = ("finger", "knee")


@dataclass(frozen=True)
class ScoreLevel:
    score: int
    name: str
    extent: str


SCORE_LEVELS: tuple[ScoreLevel, ...] = (
    ScoreLevel(0, "none", "no mottling"),
    ScoreLevel(1, "small", "a small, coin-sized area at the centre of the knee"),
    ScoreLevel(2, "moderate", "does not pass the upper edge of the kneecap"),
    ScoreLevel(3, "mild", "does not pass the middle of the thigh"),
    ScoreLevel(4, "severe", "does not pass the groin fold"),
    ScoreLevel(5, "extremely severe", "extends beyond the groin fold"),
)


def describe_score(score: int) -> ScoreLevel:
    if score not in SCORES:
        raise ValueError(f"a mottling score is an integer 0-5, got {score!r}")
    return SCORE_LEVELS[score]


@dataclass(frozen=True)
class LegLandmarks:
    """Landmark positions on the leg axis, as distances from the centre of the knee (any unit).

    ``coin_radius`` is the radius of a coin-sized patch; the others are the upper edge of the
    kneecap, the middle of the thigh and the groin fold. They must increase in that order.
    """

    coin_radius: float
    patella_top: float
    mid_thigh: float
    groin_fold: float

    def __post_init__(self) -> None:
        if not 0 < self.coin_radius < self.patella_top < self.mid_thigh < self.groin_fold:
            raise ValueError(f"landmarks must increase from the knee to the groin: {self}")


def score_for_extent(extent: float | None, landmarks: LegLandmarks) -> int:
    """Score for mottling reaching ``extent`` along the leg axis; ``None`` means no mottling."""
    if extent is None:
        return 0
    if extent <= landmarks.coin_radius:
        return 1
    if extent <= landmarks.patella_top:
        return 2
    if extent <= landmarks.mid_thigh:
        return 3
    if extent <= landmarks.groin_fold:
        return 4
    return 5


def extent_bounds(score: int, landmarks: LegLandmarks) -> tuple[float, float] | None:
    """The half-open range ``(lo, hi]`` of extents that give ``score`` (``None`` for score 0).

    Score 5 is open-ended; its upper bound is returned as ``inf``.
    """
    describe_score(score)
    edges = (0.0, landmarks.coin_radius, landmarks.patella_top, landmarks.mid_thigh,
             landmarks.groin_fold, float("inf"))
    if score == 0:
        return None
    return edges[score - 1], edges[score]


@dataclass(frozen=True)
class CrtThresholds:
    """CRT above these is prolonged (ANDROMEDA-SHOCK finger 3 s, I-MICRO knee 4 s)."""

    finger_s: float = 3.0
    knee_s: float = 4.0

    def for_site(self, site: str) -> float:
        if site == "finger":
            return self.finger_s
        if site == "knee":
            return self.knee_s
        raise ValueError(f"site must be 'finger' or 'knee', got {site!r}")


DEFAULT_THRESHOLDS = CrtThresholds()


def is_crt_prolonged(crt_s: float, site: str, thresholds: CrtThresholds = DEFAULT_THRESHOLDS) -> bool:
    return crt_s > thresholds.for_site(site)


@dataclass(frozen=True)
class HypoperfusionFlag:
    """I-MICRO 'persistent peripheral hypoperfusion': any criterion fired.

    ``criteria`` names what fired (``mottling_score>=1``, ``finger_crt>3.0s``, ``knee_crt>4.0s``);
    ``evaluated`` names what could be checked, so a missing measurement is never read as normal.
    """

    hypoperfusion: bool
    criteria: tuple[str, ...]
    evaluated: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"hypoperfusion": self.hypoperfusion, "criteria": list(self.criteria),
                "evaluated": list(self.evaluated)}


def assess_hypoperfusion(
    mottling_score: int | None = None,
    crt_s: float | None = None,
    site: str | None = None,
    thresholds: CrtThresholds = DEFAULT_THRESHOLDS,
    min_mottling_score: int = 1,
) -> HypoperfusionFlag:
    """Apply the I-MICRO rule to whatever was measured. A rejected CRT is passed as ``None``."""
    fired: list[str] = []
    evaluated: list[str] = []
    if mottling_score is not None:
        describe_score(mottling_score)
        name = f"mottling_score>={min_mottling_score}"
        evaluated.append(name)
        if mottling_score >= min_mottling_score:
            fired.append(name)
    if crt_s is not None:
        if site is None:
            raise ValueError("a CRT needs its site to be judged")
        limit = thresholds.for_site(site)
        name = f"{site}_crt>{limit:g}s"
        evaluated.append(name)
        if crt_s > limit:
            fired.append(name)
    return HypoperfusionFlag(bool(fired), tuple(fired), tuple(evaluated))
