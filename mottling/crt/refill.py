"""Fit the recovery after release and read off ``tau_s`` and ``crt_s`` with 95% intervals.

The colour signal is normalised so that the pre-press baseline is 0 (docs/design.md); the blanched extreme
``A`` is a fitted parameter. Two models are fitted and the one with the lower BIC is kept:

- delayed mono-exponential: ``A`` for ``t < d``, then ``A exp(-(t - d) / tau)`` (``d >= 0``; the plain
  mono-exponential is ``d = 0``), so ``crt = d + tau ln 10``;
- bi-exponential: ``A (w exp(-t / tau_fast) + (1 - w) exp(-t / tau_slow))``, whose 90% point is found
  numerically and whose ``tau_s`` is reported as the single exponential with the same CRT.

Intervals come from the fit covariance (delta method), widened by the timing uncertainty of the
release frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.optimize import least_squares

LN10 = math.log(10.0)
RECOVERY_LEVEL = 0.1
Z95 = 1.959964
MAX_FIT_POINTS = 240
EXTRA_MODEL_PENALTY = 10.0  # BIC units a delayed or bi-exponential fit must gain over mono
# The press plateau is read this long after the press starts (slide landing, blanching ramp).
PLATEAU_WINDOW_S = (0.9, 1.4)
# A release changes the spot colour by far more than this (log units); drift and shake less.
MIN_RELEASE_STEP = 0.04
RELEASE_SHARE = 0.35   # ...or this share of the press's own step, whichever is smaller
PRESS_SHARE = 0.3       # ...and by at least this share of the largest change in the video
MIN_PRESS_STEP = 0.012  # log units: the slide or fingertip changes the spot by more than this
MAX_LIFT_S = 0.6    # a slow lift of the slide or fingertip takes up to about 0.4 s, plus margin
MIN_LIFT_S = 0.2
RING_COVERED = 3.0          # ring deviation (in its own thresholds) that says the press covers it
RING_CLEAR_MARGIN_S = 0.4   # the ring may clear this long after the slowest lift
RING_CLEAR_SHARE = 0.35     # ...to below this share of how far the press had moved it
RING_LIFT_SHARE = 0.8       # the lift has begun once the ring is this far back from covered


@dataclass(frozen=True)
class RefillFit:
    model: str                       # "mono" | "delayed" | "bi"
    params: dict[str, float]
    amplitude: float                 # A: signal at release, in signal units (baseline is 0)
    tau_s: float
    tau_ci95: tuple[float, float]
    crt_s: float
    crt_ci95: tuple[float, float]
    residual_sd: float               # in units of A
    r2: float

    @property
    def crt_rel_uncertainty(self) -> float:
        return (self.crt_ci95[1] - self.crt_ci95[0]) / (2 * Z95 * self.crt_s)

    def predict(self, t_since_release: np.ndarray) -> np.ndarray:
        """Normalised model (1 at release, 0 at baseline)."""
        return _shape(self.model, self.params, np.asarray(t_since_release, dtype=float))


def _shape(model: str, p: dict[str, float], t: np.ndarray) -> np.ndarray:
    t = np.maximum(t, 0.0)
    if model == "bi":
        w = p["fast_weight"]
        return w * np.exp(-t / p["tau_fast_s"]) + (1 - w) * np.exp(-t / p["tau_s"])
    return np.exp(-np.maximum(t - p.get("delay_s", 0.0), 0.0) / p["tau_s"])


def _bi_crt(w: float, tf: float, ts: float) -> float:
    lo, hi = 0.0, ts * LN10
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if w * math.exp(-mid / tf) + (1 - w) * math.exp(-mid / ts) > RECOVERY_LEVEL:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _delayed_residuals(theta, t, y):
    a, log_tau, d = theta
    return a * np.exp(-np.maximum(t - d, 0.0) / math.exp(log_tau)) - y


def _mono_residuals(theta, t, y):
    a, log_tau = theta
    return a * np.exp(-t / math.exp(log_tau)) - y


def _bi_residuals(theta, t, y):
    a, log_tf, log_dt, logit_w = theta
    tf = math.exp(log_tf)
    ts = tf + math.exp(log_dt)
    w = 1 / (1 + math.exp(-logit_w))
    return a * (w * np.exp(-t / tf) + (1 - w) * np.exp(-t / ts)) - y


def _grid_start(t: np.ndarray, y: np.ndarray, allow_delay: bool) -> tuple[float, float, float]:
    """Coarse search over (tau, delay) with the amplitude solved in closed form."""
    taus = np.geomspace(0.05, 8.0, 48)
    delays = np.linspace(0.0, min(1.5, 0.5 * t[-1]), 16) if allow_delay else np.zeros(1)
    best = (np.inf, 1.0, 0.5, 0.0)
    for d in delays:
        basis = np.exp(-np.maximum(t[None, :] - d, 0.0) / taus[:, None])   # (ntau, n)
        # Explicit float64 sums, not BLAS: the same bits whatever the thread count.
        num = (basis * y[None, :]).sum(axis=1)
        den = (basis * basis).sum(axis=1)
        amp = num / den
        resid = amp[:, None] * basis - y[None, :]
        sse = (resid * resid).sum(axis=1)
        i = int(np.argmin(sse))
        if sse[i] < best[0]:
            best = (float(sse[i]), float(amp[i]), float(taus[i]), float(d))
    return best[1], best[2], best[3]


def _cov(res) -> np.ndarray | None:
    """Parameter covariance from the Jacobian at the optimum (Gauss-Newton approximation)."""
    jac = np.asarray(res.jac, dtype=float)
    n, k = jac.shape
    if n <= k:
        return None
    s2 = float((res.fun * res.fun).sum()) / (n - k)
    jtj = (jac[:, :, None] * jac[:, None, :]).sum(axis=0)
    try:
        return np.linalg.inv(jtj) * s2
    except np.linalg.LinAlgError:
        return None


def _delta_sd(fn, theta: np.ndarray, cov: np.ndarray) -> float:
    grad = np.zeros_like(theta)
    f0 = fn(theta)
    for i in range(len(theta)):
        h = 1e-5 * max(1.0, abs(theta[i]))
        th = theta.copy()
        th[i] += h
        grad[i] = (fn(th) - f0) / h
    var = float((grad[:, None] * cov * grad[None, :]).sum())
    return math.sqrt(var) if var > 0 and math.isfinite(var) else float("inf")


def _bin_points(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average runs of consecutive frames: the same information, a much cheaper fit."""
    if len(t) <= MAX_FIT_POINTS:
        return t, y
    groups = np.array_split(np.arange(len(t)), MAX_FIT_POINTS)
    return (np.array([t[gi].mean() for gi in groups]), np.array([y[gi].mean() for gi in groups]))


def _candidate_fits(t: np.ndarray, y: np.ndarray, a0: float, tau0: float, d0: float,
                    allow_delay: bool, allow_bi: bool) -> list[tuple[str, object, int]]:
    """Least-squares fits of each model from the grid start: (name, result, free parameters)."""
    out = []
    lo = [-np.inf, math.log(0.02), 0.0]
    hi = [np.inf, math.log(30.0), max(1e-9, 0.8 * t[-1]) if allow_delay else 1e-9]
    x0 = [a0, math.log(tau0), min(max(d0, lo[2]), hi[2] - 1e-12) if allow_delay else 0.0]
    try:
        res = least_squares(_delayed_residuals, x0, args=(t, y), bounds=(lo, hi), x_scale="jac")
        out.append(("delayed", res, 3 if allow_delay else 2))
    except ValueError:
        pass
    if allow_delay:
        # The plain mono-exponential (no delay) is the default; a delay must earn its place.
        try:
            res_m = least_squares(_mono_residuals, [a0, math.log(tau0)], args=(t, y),
                                  bounds=([lo[0], lo[1]], [hi[0], hi[1]]), x_scale="jac")
            out.append(("mono", res_m, 2))
        except ValueError:
            pass
    if allow_bi and len(t) >= 12:
        best_bi = None
        tf = max(0.03, tau0 * 0.375)
        ts = max(tf * 1.2, tau0 * 1.3)
        for w in (0.35, 0.65):
            x0 = [a0, math.log(tf), math.log(ts - tf), math.log(w / (1 - w))]
            try:
                r = least_squares(_bi_residuals, x0, args=(t, y), x_scale="jac",
                                  bounds=([-np.inf, math.log(0.01), math.log(0.005), -6],
                                          [np.inf, math.log(30), math.log(60), 6]))
            except ValueError:
                continue
            if best_bi is None or r.cost < best_bi.cost:
                best_bi = r
        if best_bi is not None:
            out.append(("bi", best_bi, 4))
    return out


def _bic(candidate: tuple[str, object, int], n: int) -> float:
    name, res, k = candidate
    sse = max(2 * res.cost, 1e-300)
    penalty = 0.0 if name == "mono" else EXTRA_MODEL_PENALTY
    return n * math.log(sse / n) + k * math.log(n) + penalty


def _readout(name: str, theta: np.ndarray):
    """Model name, parameters, crt, tau and the functions of theta they come from."""
    if name in ("mono", "delayed"):
        tau = math.exp(theta[1])
        d = float(theta[2]) if name == "delayed" else 0.0
        model = "delayed" if d > 1e-3 else "mono"

        def crt_fn(th):
            return (th[2] if name == "delayed" else 0.0) + math.exp(th[1]) * LN10

        def tau_fn(th):
            return math.exp(th[1])

        return model, {"tau_s": tau, "delay_s": d}, d + tau * LN10, tau, crt_fn, tau_fn
    tf = math.exp(theta[1])
    ts = tf + math.exp(theta[2])
    w = 1 / (1 + math.exp(-theta[3]))

    def crt_fn(th):
        tf_ = math.exp(th[1])
        return _bi_crt(1 / (1 + math.exp(-th[3])), tf_, tf_ + math.exp(th[2]))

    def tau_fn(th):
        return crt_fn(th) / LN10

    crt = _bi_crt(w, tf, ts)
    return "bi", {"tau_fast_s": tf, "tau_s": ts, "fast_weight": w}, crt, crt / LN10, crt_fn, tau_fn


def fit_recovery(t: np.ndarray, y: np.ndarray, release_sd_s: float = 0.0,
                 allow_delay: bool = True, allow_bi: bool = True) -> RefillFit | None:
    """Fit ``y`` (baseline 0) against ``t`` (seconds since release). None if nothing converges.

    The asymptote is the pre-press baseline (0): the ring normalisation makes the baseline the
    place the colour returns to, and a free asymptote would trade off against ``tau``.
    """
    t, y = _bin_points(np.asarray(t, dtype=float), np.asarray(y, dtype=float))
    if len(t) < 6:
        return None
    a0, tau0, d0 = _grid_start(t, y, allow_delay)
    if a0 == 0 or not math.isfinite(a0):
        return None
    n = len(t)
    candidates = _candidate_fits(t, y, a0, tau0, d0, allow_delay, allow_bi)
    if not candidates:
        return None
    name, res, _ = min(candidates, key=lambda c: _bic(c, n))
    theta = np.asarray(res.x, dtype=float)
    model, params, crt, tau, crt_fn, tau_fn = _readout(name, theta)
    cov = _cov(res)
    if cov is None or not np.all(np.isfinite(cov)):
        crt_sd = tau_sd = float("inf")
    else:
        crt_sd = _delta_sd(crt_fn, theta, cov)
        tau_sd = _delta_sd(tau_fn, theta, cov)
    crt_sd = math.hypot(crt_sd, release_sd_s)
    a = float(theta[0])
    resid_sd = math.sqrt(2 * res.cost / max(n - len(theta), 1)) / abs(a) if a else float("inf")
    tss = float(((y - y.mean()) ** 2).sum()) or 1e-12
    return RefillFit(
        model=model, params=params, amplitude=a, tau_s=tau,
        tau_ci95=(max(0.0, tau - Z95 * tau_sd), tau + Z95 * tau_sd),
        crt_s=crt, crt_ci95=(max(0.0, crt - Z95 * crt_sd), crt + Z95 * crt_sd),
        residual_sd=resid_sd, r2=1 - 2 * res.cost / tss,
    )


class _ReleaseFeature:
    """One per-channel feature followed through the press, for the release test."""

    def __init__(self, feature: np.ndarray, k: int, n_base: int, w0: int, w1: int) -> None:
        # A centred running median removes single-frame flicker without delaying the edge.
        self.smooth = ndimage.median_filter(feature, size=(k, 1), mode="nearest")
        self.sd_frame = _robust_sd(self.smooth[w0:max(w1, w0 + 6)])
        self.base = np.median(self.smooth[:n_base], axis=0)
        # A faint press (dark skin, low blanching contrast) releases by less: the floor is a
        # share of how far the press itself moved the feature, capped at the usual step.
        press_step = np.abs(np.median(self.smooth[w0:w1], axis=0) - self.base)
        self.min_step = np.minimum(MIN_RELEASE_STEP, np.maximum(RELEASE_SHARE * press_step, 0.01))

    def departure(self, i: int, run: int, lo: int, hi: int) -> np.ndarray:
        """(run,) how far frames i.. have left the trailing plateau [lo, hi), in thresholds.

        The threshold covers the plateau's own swings over the last second or so (flicker, the
        pulse). Channels the press moved clearly count only a move back towards the pre-press
        look, which is what a release does.
        """
        hist = self.smooth[lo:hi]
        ref = np.median(hist, axis=0)
        swing = np.max(np.abs(hist - ref), axis=0)
        thr = np.maximum(1.5 * swing + 4 * self.sd_frame, self.min_step)
        toward = self.base - ref
        sign = np.where(np.abs(toward) > 2 * self.min_step, np.sign(toward), 0.0)
        dev = self.smooth[i:i + run] - ref
        dev = np.where(sign != 0, dev * sign, np.abs(dev))
        out = np.max(dev / thr, axis=1)
        return out if len(out) == run else np.zeros(run)


@dataclass(frozen=True)
class PressTiming:
    """Frame indices of the press and release, found from the spot and the ring around it."""

    press_idx: int       # first frame that departs from the pre-press baseline
    release_idx: int     # first frame after the press plateau ends
    clear_idx: int       # first frame with the slide or fingertip gone from around the spot
    release_s: float


def _robust_sd(x: np.ndarray) -> np.ndarray:
    d = np.diff(x, axis=0)
    return np.maximum(1.4826 * np.median(np.abs(d - np.median(d, axis=0)), axis=0) / math.sqrt(2),
                      1e-6)


def _ring_deviation(ring_log: np.ndarray, n_base: int) -> np.ndarray:
    """(N,) how far the ring's look is from its pre-press baseline; below 1 is back to it."""
    ring_base = np.median(ring_log[:n_base], axis=0)
    ring_sd = _robust_sd(ring_log[:n_base])
    return np.max(np.abs(ring_log - ring_base) / (6 * ring_sd + 0.006), axis=1)


def _sustained(mask: np.ndarray, start: int, run: int) -> int | None:
    count = 0
    for i in range(start, len(mask)):
        count = count + 1 if mask[i] else 0
        if count >= run:
            return i - run + 1
    return None


def detect_press(t_s: np.ndarray, spot_log: np.ndarray, ring_log: np.ndarray, n_base: int,
                 release_feature: np.ndarray) -> tuple[PressTiming | None, str | None]:
    """Find press, release and the moment the occluder has gone.

    ``spot_log`` is log(ROI / ring) per channel and ``ring_log`` log(ring chromaticity) per
    channel, both (N, 3). The press is the first sustained departure of the spot from its baseline.
    During the press the spot shows a flat plateau (blanched skin under glass, or the examiner's
    fingertip); the release is where that plateau ends, which works whether or not the occluder
    hides the spot. The occluder has gone once the unpressed ring is back to its own baseline.
    Returns (timing, None) or (None, reason).
    """
    n = len(t_s)
    base = np.median(spot_log[:n_base], axis=0)
    # Frame-to-frame noise and the slower wander of the baseline (compression, sub-pixel
    # tracking) both count; a press moves the spot's colour well beyond either.
    spread = 1.4826 * np.median(np.abs(spot_log[:n_base] - base), axis=0)
    sd = np.maximum(_robust_sd(spot_log[:n_base]), spread)
    step = np.abs(spot_log - base)
    # The press is the largest change the spot goes through: a departure must also reach a good
    # share of it, so a wobble of a tiny, noisy spot before the press is not taken for it.
    big = np.percentile(np.max(step, axis=1), 95)
    dev = np.max(step / (sd * 8 + MIN_PRESS_STEP), axis=1)
    dev = np.minimum(dev, np.max(step, axis=1) / max(PRESS_SHARE * big, 1e-9))
    fps = (n - 1) / max(t_s[-1] - t_s[0], 1e-6)
    press = _sustained(dev > 1.0, n_base, max(3, int(round(0.05 * fps))))
    if press is None:
        return None, "no press found: the spot never blanched or was never covered"
    # Plateau reference over a short window well inside the press.
    t_press = t_s[press]
    w0 = int(np.searchsorted(t_s, t_press + PLATEAU_WINDOW_S[0]))
    w1 = int(np.searchsorted(t_s, t_press + PLATEAU_WINDOW_S[1]))
    if w1 - w0 < 3 or w1 >= n - 3:
        return None, "no release found: the video ends during the press"
    # Follow the plateau with a trailing median, so slow drift does not read as a release. The
    # threshold covers the plateau's own swings over the last second or so (flicker, the pulse),
    # so only a departure larger than anything seen while pressed counts. A centred running median
    # removes single-frame flicker without delaying the edge.
    k = int(np.clip(round(0.1 * fps), 1, 31)) | 1
    # Two views of the spot must agree that the press has ended: its colour against the far field
    # (sees the occluder go) and against the ring around it (blind to anything the whole area
    # shares); a transient that only one of them shows is not a release.
    feats = [_ReleaseFeature(f, k, n_base, w0, w1) for f in (release_feature, spot_log)]
    # ...unless the far-field view alone holds its departure for longer than a transient does.
    run = max(3, int(round(0.15 * fps)))
    run_alone = max(run + 1, int(round(1.0 * fps)))
    # The ring around the spot is the hand's evidence: where the slide or fingertip covers it
    # during the press, it returns to its own baseline only when the occluder leaves. A colour
    # step in the spot while the ring is still covered is a transient inside the press (the
    # camera wandering over the occluder's edge), not the release.
    ring_dev = _ring_deviation(ring_log, n_base)
    ring_level = float(np.median(ring_dev[w0:w1]))
    ring_covered = ring_level > RING_COVERED
    clear_run = max(2, int(round(0.1 * fps)))

    def ring_clears(i: int) -> bool:
        if not ring_covered:
            return True
        end = int(np.searchsorted(t_s, t_s[i] + MAX_LIFT_S + RING_CLEAR_MARGIN_S))
        low = ring_dev[:end] < max(RING_CLEAR_SHARE * ring_level, 1.0)
        return _sustained(low, max(i - clear_run, w1), clear_run) is not None

    def ring_lift(i: int, lo: int, hi: int) -> int:
        # The spot's colour can drift before the lift (the hand tilting); the ring says when
        # the occluder starts to leave it: the first frame well below its covered level.
        end = int(np.searchsorted(t_s, t_s[i] + MAX_LIFT_S + RING_CLEAR_MARGIN_S))
        level = float(np.median(ring_dev[lo:hi]))
        drop = np.nonzero(ring_dev[i:end] < RING_LIFT_SHARE * level)[0]
        return i + int(drop[0]) if len(drop) else i

    release = None
    i = w1
    while i < n - run:
        lo = max(int(np.searchsorted(t_s, t_s[i] - 1.5)), w0)
        hi = max(int(np.searchsorted(t_s, t_s[i] - 0.2)), lo + 2)
        z = np.min([f.departure(i, run, lo, hi) for f in feats], axis=0)
        alone = feats[0].departure(i, run_alone, lo, hi) if i < n - run_alone else np.zeros(1)
        if (np.all(z > 1.0) or np.all(alone > 1.0)) and ring_clears(i):
            release = i
            # Step back to the last frame still on the plateau.
            while release > w1 and feats[0].departure(release - 1, 1, lo, hi)[0] > 0.3:
                release -= 1
            if ring_covered:
                release = ring_lift(release, lo, hi)
            break
        i += 1
    if release is None:
        return None, "no release found: the spot stays pressed until the end of the video"
    # The occluder has gone when the ring's own colour is back near its baseline.
    clear = _sustained(ring_dev < 1.0, release, 2)
    # The slide or fingertip takes at most about a third of a second to lift clear.
    cap = int(np.searchsorted(t_s, t_s[release] + MAX_LIFT_S))
    floor = int(np.searchsorted(t_s, t_s[release] + MIN_LIFT_S))
    clear = min(cap if clear is None else max(clear, floor), cap)
    clear = min(max(clear, release), n - 1)
    release_s = 0.5 * (t_s[release - 1] + t_s[release])
    return PressTiming(press_idx=press, release_idx=release, clear_idx=clear,
                       release_s=float(release_s)), None
