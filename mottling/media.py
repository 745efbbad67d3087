"""What kind of media a file holds, judged by its first bytes.

Decoders must never guess a format from a file name or let FFmpeg probe freely: some of FFmpeg's
demuxers (concat playlists, HLS, image sequences) open other files named inside the input, so a
"video" of forty bytes of text could make the server read its own disk. Every decoder sniffs the
bytes first and opens only the containers named here.
"""

from __future__ import annotations

HEAD_BYTES = 64

PHOTO_FORMATS = ("jpeg", "png", "webp", "heif")
VIDEO_FORMATS = ("mp4", "mov", "webm")

# ISO BMFF brands (the 4 bytes after "ftyp"): still images vs video.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif",
                b"avis"}
_MOV_BRANDS = {b"qt  "}
_MP4_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso8", b"iso9", b"mp41",
               b"mp42", b"mp71", b"avc1", b"M4V ", b"M4VP", b"M4A ", b"MSNV", b"dash", b"3gp4",
               b"3gp5", b"3gp6", b"3g2a", b"mmp4", b"f4v ", b"XAVC", b"MiVi"}
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


def sniff_format(head: bytes) -> str | None:
    """The media format named by a file's first bytes, or None when they name none we read."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):          # EBML: WebM or Matroska
        return "webm"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brands = {head[8:12]}
        box_size = int.from_bytes(head[:4], "big")
        # compatible brands follow the minor version, 4 bytes each, up to the end of the box
        for offset in range(16, min(box_size, len(head)) - 3, 4):
            brands.add(head[offset:offset + 4])
        major = head[8:12]
        if major in _HEIF_BRANDS:
            return "heif"
        if major in _MOV_BRANDS:
            return "mov"
        if major in _MP4_BRANDS or brands & _MP4_BRANDS:
            return "mp4"
        if brands & _HEIF_BRANDS:
            return "heif"
        if brands & _MOV_BRANDS:
            return "mov"
        return "mp4"   # an ISO BMFF file with an exotic brand: let the video decoder judge it
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:     # old QuickTime files start with an atom
        return "mov"
    return None


# The FFmpeg demuxer that reads each video format; no other demuxer is ever used.
VIDEO_DEMUXERS = {"mp4": "mov", "mov": "mov", "webm": "matroska"}
