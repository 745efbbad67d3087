"""Peak memory of decoding one hostile photo, ours against widening first, side by side.

    python benchmarks/photo_decode_memory.py [--megapixels 49] [--kinds grey16_png,rgb_png,...]
                                             [--texture flat|photo]

Each photo kind is written once to a temporary folder (one colour, so the files are tiny while the
pixel count is at the limit) and then decoded in a fresh child process, twice. A format whose own
pixel limit is lower (WebP: ``ImageLimits.pixel_limit``) is measured at that limit, and once more at
the requested size, where ours refuses it from the header (``webp_over``; ``heic_over``, a
single-picture HEIC). ``heic_iphone48`` is an iPhone "HEIF Max" sized photo (8064x6048) stored as
a grid of 512x512 tiles, as the iPhone stores it, which ours reads a row of tiles at a time.
``--texture photo`` fills the JPEG, WebP and HEIC photos with a grainy, mottled skin-like picture
instead of one colour, so their files are as large as a real phone's (the PNGs stay one colour).

- ``ours``: ``mottling.photo.decode.load_photo`` with the default limits, as every front end calls
  it (the shipped model's 320 px draft size), which shrinks strip by strip before widening to RGB;
- ``widen-first``: the decoder as it was before (what a plain Pillow pipeline does too): JPEG draft,
  load, EXIF transpose, widen the whole picture to RGB (16-bit greyscale through int64), reduce.

The figure is the child's peak resident memory (``VmHWM``; ``ru_maxrss`` would also count the
parent's memory from before the child's ``exec``) minus its resident memory just before decoding
(after the imports), in MiB (2**20 bytes): the memory one decode adds to a process. The target
is at most 200 MiB for any photo within the pixel limit. The child processes run one at a time.
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
         "jpeg_exif6", "webp", "webp_over", "heic", "heic_over", "heic_iphone48")
FORMAT_OF = {"webp": "WEBP", "webp_over": None, "heic": "HEIF", "heic_over": None,
             "heic_iphone48": "HEIF_GRID"}

CHILD = r"""
import json, sys
sys.path.insert(0, {repo!r})
import numpy as np
from PIL import Image, ImageOps
from mottling.errors import InputTooLargeError
from mottling.photo.decode import DEFAULT_LIMITS, load_photo

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

import time
path, mode = sys.argv[1], sys.argv[2]
before = status_mb("VmRSS")
t0 = time.perf_counter()
try:
    if mode == "ours":
        image = load_photo(path, 160, DEFAULT_LIMITS).image
    else:
        image = widen_first(path)
except InputTooLargeError as err:
    print(json.dumps({{"added_mb": status_mb("VmHWM") - before, "refused": str(err)}}))
    raise SystemExit(0)
peak = status_mb("VmHWM")
print(json.dumps({{"added_mb": peak - before, "base_mb": before, "size": list(image.size),
                  "seconds": time.perf_counter() - t0}}))
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


def size_for(kind: str, side: int, scale: float = 1.0) -> tuple[int, int]:
    """The requested square, an iPhone 48 MP frame, or the largest square the format accepts
    (times ``scale``: a large grainy file lowers that limit, as its bytes count too)."""
    sys.path.insert(0, str(REPO))
    from mottling.photo.decode import DEFAULT_LIMITS

    if kind == "heic_iphone48":
        return 8064, 6048
    fmt = FORMAT_OF.get(kind, "PNG")
    if fmt is not None and side * side > DEFAULT_LIMITS.pixel_limit(fmt) * scale:
        side = int((DEFAULT_LIMITS.pixel_limit(fmt) * scale) ** 0.5)
    return side, side


def textured(width: int, height: int, seed: int = 0):
    """A grainy, mottled skin-like picture, built a band of rows at a time."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = Image.new("RGB", (width, height))
    x = np.arange(width, dtype=np.float32)
    for top in range(0, height, 256):
        y = np.arange(top, min(height, top + 256), dtype=np.float32)[:, None]
        blotch = 18 * np.sin(x / 97.0 + 0.6 * np.sin(y / 131.0)) * np.cos(y / 83.0 + x / 211.0)
        base = np.array([196, 146, 128], np.float32)
        band = base + blotch[..., None] * np.array([0.4, 1.0, 0.8], np.float32)
        band += rng.normal(0, 6, band.shape).astype(np.float32)
        out.paste(Image.fromarray(np.clip(band, 0, 255).astype(np.uint8)), (0, top))
    return out


def make(kind: str, folder: Path, side: int, texture: str = "flat",
         scale: float = 1.0) -> Path | None:
    from PIL import Image

    path = folder / kind
    width, height = size_for(kind, side, scale)
    if kind.endswith("_png"):
        side = width
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
    elif kind in ("jpeg", "jpeg_exif6", "webp", "webp_over", "heic", "heic_over", "heic_iphone48"):
        image = (Image.new("RGB", (width, height), (192, 144, 128)) if texture == "flat"
                 else textured(width, height))
        if kind == "jpeg":
            image.save(path, format="JPEG", quality=90)
        elif kind == "jpeg_exif6":
            exif = Image.Exif()
            exif[0x0112] = 6
            image.save(path, format="JPEG", quality=90, exif=exif)
        elif kind.startswith("webp"):
            image.save(path, format="WEBP", quality=80)
        else:
            try:
                import pillow_heif

                pillow_heif.register_heif_opener()
                grid = {"tile_size": 512, "enc_params": {"preset": "ultrafast"}}
                image.save(path, format="HEIF", quality=50,
                           **(grid if kind == "heic_iphone48" else {}))
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
    parser.add_argument("--texture", choices=("flat", "photo"), default="flat")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    side = int(round((args.megapixels * 1e6) ** 0.5))
    kinds = [k for k in args.kinds.split(",") if k]
    what = "one-colour" if args.texture == "flat" else "textured (JPEG/WebP/HEIC)"
    print(f"photo decode memory: {what} {side}x{side} photos ({side * side / 1e6:.0f} MP), "
          f"peak RSS added by one decode in a fresh process (target <= {TARGET_MB:.0f} MiB)")
    print(f"{'kind':<15}{'MP':>5}{'file kB':>9}{'ours MiB':>10}{'widen-first MiB':>17}{'ratio':>8}"
          f"{'ours s':>8}{'before s':>10}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            scale = 1.0
            while True:      # the largest accepted: step down while ours refuses it
                path = make(kind, Path(tmp), side, args.texture, scale)
                if path is None:
                    break
                ours = measure(path, "ours")
                if "refused" not in ours or FORMAT_OF.get(kind) in (None, "PNG") or scale < 0.6:
                    break
                path.unlink()
                scale *= 0.92
            if path is None:
                continue
            before = measure(path, "widen-first")
            rows[kind] = {"file_bytes": path.stat().st_size, "ours": ours, "widen_first": before}
            path.unlink()
            a, b = ours.get("added_mb"), before.get("added_mb")
            ratio = f"{b / a:.1f}x" if a and b and "refused" not in ours else "-"
            width, height = size_for(kind, side, scale)
            rows[kind]["megapixels"] = width * height / 1e6
            print(f"{kind:<15}{width * height / 1e6:>5.1f}{rows[kind]['file_bytes'] / 1000:>9.0f}"
                  f"{a if a is not None else float('nan'):>10.0f}"
                  f"{b if b is not None else float('nan'):>17.0f}{ratio:>8}"
                  f"{ours.get('seconds', float('nan')):>8.2f}"
                  f"{before.get('seconds', float('nan')):>10.2f}"
                  + ("" if a is None or a <= TARGET_MB else "  over target")
                  + (f"  ({ours.get('error') or before.get('error')})"
                     if "error" in ours or "error" in before else "")
                  + (f"  ours: refused (413): {ours['refused']}" if "refused" in ours else ""))
    worst_kind = max(rows, key=lambda k: rows[k]["ours"].get("added_mb", 0.0), default=None)
    worst = rows[worst_kind]["ours"].get("added_mb", 0.0) if worst_kind else 0.0
    print(f"worst (ours): {worst:.0f} MiB ({worst_kind}); target <= {TARGET_MB:.0f} MiB: "
          f"{'met' if worst <= TARGET_MB else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({"side": side, "rows": rows, "worst_mb": worst}, indent=2))


if __name__ == "__main__":
    main()
