"""Peak memory of decoding one hostile photo, ours against widening first, side by side.

    python benchmarks/photo_decode_memory.py [--megapixels 49] [--kinds grey16_png,rgb_png,...]

Each photo kind is written once to a temporary folder (one colour, so the files are tiny while the
pixel count is at the limit) and then decoded in a fresh child process, twice:

- ``ours``: ``mottling.photo.decode.load_photo`` as every front end calls it (the shipped model's
  320 px draft size), which shrinks strip by strip before widening to RGB;
- ``widen-first``: the decoder as it was before (what a plain Pillow pipeline does too): JPEG draft,
  load, EXIF transpose, widen the whole picture to RGB (16-bit greyscale through int64), reduce.

The figure is the child's peak resident memory (``VmHWM``; ``ru_maxrss`` would also count the
parent's memory from before the child's ``exec``) minus its resident memory just before decoding
(after the imports), in MB: the memory one decode adds to a process. The target
is at most 200 MB for any photo within the pixel limit. The child processes run one at a time.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_MB = 200.0

KINDS = ("grey16_png", "rgb16_png", "rgb_png", "rgba_png", "palette_png", "grey_png", "jpeg",
         "jpeg_exif6", "webp", "heic")

CHILD = r"""
import json, sys
sys.path.insert(0, {repo!r})
import numpy as np
from PIL import Image, ImageOps
from mottling.photo.decode import DEFAULT_LIMITS, ImageLimits, load_photo

def status_mb(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0

def widen_first(path):
    # the decoder before this change, step for step: draft (JPEG), load, EXIF transpose, widen the
    # whole picture to RGB (16-bit greyscale through int64), then box-reduce, then copy out
    with Image.open(path) as im:
        if im.format in ("JPEG", "MPO"):
            im.draft("RGB", (320, 320))
        im.load()
        up = ImageOps.exif_transpose(im)
        if up.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            wide = np.asarray(up).astype(np.int64)
            top = 65535 if up.mode.startswith("I;16") or wide.max() > 255 else 255
            grey = np.clip(wide * 255 // max(top, 1), 0, 255).astype(np.uint8)
            rgb = Image.fromarray(grey, "L").convert("RGB")
        else:
            rgb = up.convert("RGB")
        f = min(rgb.width // 320, rgb.height // 320)
        rgb = rgb.reduce(f) if f >= 2 else rgb
        return Image.frombytes("RGB", rgb.size, rgb.tobytes())

path, mode = sys.argv[1], sys.argv[2]
limits = ImageLimits(max_pixels=10**9)
before = status_mb("VmRSS")
if mode == "ours":
    image = load_photo(path, 160, limits).image
else:
    image = widen_first(path)
peak = status_mb("VmHWM")
print(json.dumps({{"added_mb": peak - before, "base_mb": before, "size": list(image.size)}}))
"""


def _png(path: Path, width: int, height: int, colour_type: int, bit_depth: int,
         pixel: bytes, palette: bytes | None = None) -> None:
    """A one-colour PNG written row by row, so even a 16-bit 49 MP file costs no memory to make."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + pixel * width
    comp = zlib.compressobj(9)
    body = bytearray()
    for _ in range(height):
        body += comp.compress(row)
    body += comp.flush()
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type,
                                            0, 0, 0)))
        if palette is not None:
            fh.write(chunk(b"PLTE", palette))
        fh.write(chunk(b"IDAT", bytes(body)))
        fh.write(chunk(b"IEND", b""))


def make(kind: str, folder: Path, side: int) -> Path | None:
    from PIL import Image

    path = folder / kind
    if kind == "grey16_png":
        _png(path, side, side, 0, 16, b"\x80\x00")
    elif kind == "rgb16_png":
        _png(path, side, side, 2, 16, b"\xc0\x00\x90\x00\x80\x00")
    elif kind == "rgb_png":
        _png(path, side, side, 2, 8, b"\xc0\x90\x80")
    elif kind == "rgba_png":
        _png(path, side, side, 6, 8, b"\xc0\x90\x80\xff")
    elif kind == "palette_png":
        _png(path, side, side, 3, 8, b"\x00", palette=b"\xc0\x90\x80")
    elif kind == "grey_png":
        _png(path, side, side, 0, 8, b"\x80")
    elif kind in ("jpeg", "jpeg_exif6", "webp", "heic"):
        image = Image.new("RGB", (side, side), (192, 144, 128))
        if kind == "jpeg":
            image.save(path, format="JPEG", quality=90)
        elif kind == "jpeg_exif6":
            exif = Image.Exif()
            exif[0x0112] = 6
            image.save(path, format="JPEG", quality=90, exif=exif)
        elif kind == "webp":
            image.save(path, format="WEBP", quality=80)
        else:
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
                image.save(path, format="HEIF", quality=50)
            except Exception as err:  # noqa: BLE001 -- no HEIF encoder in this libheif build
                print(f"  heic: cannot encode here ({type(err).__name__}); skipped")
                return None
        del image
    return path


def measure(path: Path, mode: str) -> dict:
    code = CHILD.format(repo=str(REPO))
    out = subprocess.run([sys.executable, "-c", code, str(path), mode], capture_output=True,
                         text=True, timeout=600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megapixels", type=float, default=49.0)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    side = int(round((args.megapixels * 1e6) ** 0.5))
    kinds = [k for k in args.kinds.split(",") if k]
    print(f"photo decode memory: one-colour {side}x{side} photos ({side * side / 1e6:.0f} MP), "
          f"peak RSS added by one decode in a fresh process (target <= {TARGET_MB:.0f} MB)")
    print(f"{'kind':<13}{'file kB':>9}{'ours MB':>10}{'widen-first MB':>16}{'ratio':>8}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            path = make(kind, Path(tmp), side)
            if path is None:
                continue
            ours, before = measure(path, "ours"), measure(path, "widen-first")
            rows[kind] = {"file_bytes": path.stat().st_size, "ours": ours, "widen_first": before}
            path.unlink()
            a, b = ours.get("added_mb"), before.get("added_mb")
            ratio = f"{b / a:.1f}x" if a and b else "-"
            print(f"{kind:<13}{rows[kind]['file_bytes'] / 1000:>9.0f}"
                  f"{a if a is not None else float('nan'):>10.0f}"
                  f"{b if b is not None else float('nan'):>16.0f}{ratio:>8}"
                  + ("" if a is None or a <= TARGET_MB else "  over target")
                  + (f"  ({ours.get('error') or before.get('error')})"
                     if "error" in ours or "error" in before else ""))
    worst = max((r["ours"].get("added_mb", 0.0) for r in rows.values()), default=0.0)
    print(f"worst (ours): {worst:.0f} MB; target <= {TARGET_MB:.0f} MB: "
          f"{'met' if worst <= TARGET_MB else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"side": side, "rows": rows, "worst_mb": worst}, indent=2))


if __name__ == "__main__":
    main()
