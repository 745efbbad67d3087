"""How far colour photos sit from the ``no_colour`` threshold, and where greyscale photos land.

    python benchmarks/photo_colour_flag.py [--n 120] [--seed 4242]

Prints, per set, the lowest and 5th-percentile value of the measure behind the flag (90th
percentile of HSV saturation over pixels that can show a colour) and the share flagged:

- photos from the training generator (``mottling.synth.images``), fresh seeds;
- photos from a second, differently built renderer (``tests/photos.py``'s stand-in leg);
- the generator's photos under harder conditions than it draws: dimmed to 30 % and saved as JPEG
  quality 60, or half desaturated;
- greyscale copies of both sets (stored as 8-bit greyscale JPEG and as RGB JPEG of a grey image).

The threshold (``QualityPolicy.colour_min_saturation``) should sit well below every colour set and
above every greyscale one.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from mottling.photo.decode import decode_image  # noqa: E402
from mottling.photo.quality import DEFAULT_POLICY, assess_quality  # noqa: E402


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return decode_image(buf.getvalue())


def _measure(images: list[Image.Image]) -> np.ndarray:
    return np.array([assess_quality(im).saturation_p90 for im in images])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()

    from mottling.synth.images import render_photo
    from tests.photos import _simple_leg

    rng = np.random.default_rng(args.seed)
    generator = [_jpeg(render_photo(int(rng.integers(1 << 30)), i % 6, 1 + i % 10, 384).image, 90)
                 for i in range(args.n)]
    second = [_simple_leg(int(rng.integers(1 << 30)), i % 6, 1 + i % 10, 320)
              for i in range(args.n // 3)]
    dim = [_jpeg(Image.fromarray((np.asarray(im, np.float32) * 0.3).astype(np.uint8)), 60)
           for im in generator]
    washed = [Image.blend(im, im.convert("L").convert("RGB"), 0.5) for im in generator]
    grey = ([_jpeg(im.convert("L"), 85) for im in generator + second]
            + [_jpeg(im.convert("L").convert("RGB"), 85) for im in generator + second])
    sets = {"generator (training renderer)": generator, "second renderer": second,
            "generator, dim x0.3, JPEG q60": dim, "generator, half desaturated": washed,
            "greyscale copies of both": grey}
    threshold = DEFAULT_POLICY.colour_min_saturation
    print(f"no_colour: 90th-percentile saturation < {threshold} (seed {args.seed})")
    print(f"{'set':<32}{'n':>5}{'min':>8}{'p5':>8}{'flagged':>9}")
    for name, images in sets.items():
        values = _measure(images)
        print(f"{name:<32}{len(values):>5}{values.min():>8.3f}{np.percentile(values, 5):>8.3f}"
              f"{np.mean((values >= 0) & (values < threshold)):>9.1%}")


if __name__ == "__main__":
    main()
