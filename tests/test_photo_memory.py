"""Decoding a hostile photo at the pixel limit stays within 200 MB of memory.

A one-colour 49 MP 16-bit greyscale PNG is ~100 kB on disk; widening it to int64 and then RGB before
shrinking once cost 1.3 GB. Each case is decoded in a fresh child process whose peak resident
memory (``VmHWM``) is compared with its memory just before the decode.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUDGET_MB = 200.0
SIDE = 7000   # 49 MP, under the CLI's 64 MP and the server's 50 MP limits

CHILD = r"""
import json, sys
sys.path.insert(0, sys.argv[2])
from mottling.photo.decode import load_photo

def status_mb(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024

before = status_mb("VmRSS")
photo = load_photo(sys.argv[1], 160)
print(json.dumps({"added_mb": status_mb("VmHWM") - before, "size": list(photo.image.size),
                  "pixel": list(photo.image.getpixel((0, 0)))}))
"""


def _one_colour_png(path: Path, colour_type: int, bit_depth: int, pixel: bytes) -> None:
    """Written a row at a time: making the file costs this process no memory either."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row, comp, body = b"\x00" + pixel * SIDE, zlib.compressobj(9), bytearray()
    for _ in range(SIDE):
        body += comp.compress(row)
    body += comp.flush()
    header = struct.pack(">IIBBBBB", SIDE, SIDE, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(body))
                     + chunk(b"IEND", b""))


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("kind,colour_type,bit_depth,pixel,grey", [
    ("grey16", 0, 16, b"\x80\x00", 127),      # 0x8000 of 65535 -> 127 of 255
    ("grey8", 0, 8, b"\x80", 128),
])
def test_a_49_megapixel_greyscale_png_decodes_within_budget(tmp_path, kind, colour_type,
                                                             bit_depth, pixel, grey):
    path = tmp_path / f"{kind}.png"
    _one_colour_png(path, colour_type, bit_depth, pixel)
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(REPO)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["size"] == [334, 334]            # reduced 21 times (7000 // 320), rounded up
    assert result["pixel"] == [grey] * 3            # scaled, not clipped to white
    assert result["added_mb"] <= BUDGET_MB, f"{kind}: decoding took {result['added_mb']:.0f} MB"
