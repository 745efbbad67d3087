"""Draw why a refill time came out as it did: the signal, the fit, the release and the 90% point."""

from __future__ import annotations

from pathlib import Path

from mottling.results import CrtResult


def plot_crt(result: CrtResult, png_path: str | Path) -> Path:
    """Write a PNG of ``result.curve``; works for rejected results too (the reason is the title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png_path = Path(png_path)
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    curve = result.curve
    if curve is not None and curve.t_s:
        ax.plot(curve.t_s, curve.signal, ".", ms=3, color="0.4", label="colour signal")
        if curve.fit_t_s:
            ax.plot(curve.fit_t_s, curve.fit, "-", color="tab:red", lw=2, label="fitted recovery")
    else:
        ax.text(0.5, 0.5, "no signal", transform=ax.transAxes, ha="center")
    ax.axhline(0.0, color="0.7", lw=1)
    ax.axhline(0.1, color="tab:green", lw=1, ls=":", label="90% recovered")
    if result.release_s is not None:
        ax.axvline(result.release_s, color="tab:blue", ls="--", label=f"release {result.release_s:.2f} s")
        if result.crt_s is not None:
            t90 = result.release_s + result.crt_s
            ax.axvline(t90, color="tab:green", ls="--", label=f"CRT {result.crt_s:.2f} s")
            if result.crt_ci95 is not None:
                ax.axvspan(result.release_s + result.crt_ci95[0], result.release_s + result.crt_ci95[1],
                           color="tab:green", alpha=0.12)
    ax.set_ylim(-0.4, 1.6)
    ax.set_xlabel("time (s, video timestamps)")
    ax.set_ylabel("blanching (1 = at release, 0 = baseline)")
    if result.status == "ok":
        title = (f"{result.site} CRT {result.crt_s:.2f} s (threshold {result.threshold_s:g} s"
                 f"{', prolonged' if result.prolonged else ''})")
    else:
        title = f"rejected: {result.reason}"
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path)
    plt.close(fig)
    return png_path
