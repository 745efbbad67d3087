"""Finding input files and recognising them by their bytes (no model needed)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from mottling.batch.inputs import ZIP_SEP, discover, recognise, sniff_format
from mottling.errors import InputError

HEADS = {
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "heif": b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic",
    "heif-mif1": b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic",
    "mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
    "mp4-iphone-m4v": b"\x00\x00\x00\x1cftypM4V \x00\x00\x00\x01M4V M4A mp42",
    "mov": b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  ",
    "mov-old": b"\x00\x00\x00\x08wide\x00\x01\x02\x03mdat",
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01webm",
}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_sniff_recognises_each_format_by_its_bytes(name):
    assert sniff_format(HEADS[name]) == name.split("-")[0]


@pytest.mark.parametrize("head", [b"", b"GIF89a\x01\x00", b"hello world", b"PK\x03\x04abc",
                                  b"%PDF-1.7", b"\xff\xd8"])
def test_sniff_rejects_other_content(head):
    assert sniff_format(head) is None


def test_content_wins_over_extension_and_extension_only_breaks_ties():
    assert recognise(HEADS["png"], "photo.jpg") == ("photo", "png")
    assert recognise(HEADS["mp4"], "clip.dat") == ("video", "mp4")
    assert recognise(HEADS["jpeg"], "no_extension") == ("photo", "jpeg")
    # too short to carry magic bytes: the extension names the decoder that will explain the problem
    assert recognise(b"\xff\xd8", "cut.jpg") == ("photo", "jpeg")
    assert recognise(b"", "empty.mov") == ("video", "mov")
    assert recognise(b"plain text", "notes.txt") == ("unknown", None)


def _tree(root: Path) -> None:
    (root / "a/b").mkdir(parents=True)
    (root / "a/b/deep.jpg").write_bytes(HEADS["jpeg"])
    (root / "a/top.png").write_bytes(HEADS["png"])
    (root / "a/.DS_Store").write_bytes(b"junk")
    (root / "a/.hidden").mkdir()
    (root / "a/.hidden/x.jpg").write_bytes(HEADS["jpeg"])
    (root / "a/notes.txt.bak").write_text("kept: it becomes an error row, never vanishes")
    with zipfile.ZipFile(root / "a/c.zip", "w") as zf:
        zf.writestr("inner/v.mp4", HEADS["mp4"])
        zf.writestr("__MACOSX/inner/._v.mp4", b"resource fork")
        zf.writestr("inner/", b"")


def test_folders_are_searched_recursively_zips_opened_hidden_files_skipped(tmp_path):
    _tree(tmp_path)
    items = discover(["a"], root=tmp_path)
    assert [i.path for i in items] == [
        "a/b/deep.jpg", f"a/c.zip{ZIP_SEP}inner/v.mp4", "a/notes.txt.bak", "a/top.png"]
    member = items[1]
    assert member.member == "inner/v.mp4" and member.location == str(tmp_path / "a/c.zip")
    assert member.size == len(HEADS["mp4"])


def test_globs_list_files_and_duplicates(tmp_path):
    _tree(tmp_path)
    (tmp_path / "list.txt").write_text("# a comment\na/top.png\n\na/b\n")
    items = discover(["a/**/*.jpg", "@list.txt", "a/top.png"], root=tmp_path)
    assert [i.path for i in items] == ["a/b/deep.jpg", "a/top.png"]   # each file once
    # a folder named in a list shows its files below its own name, like a folder INPUT
    assert [i.path for i in discover(["list.txt"], root=tmp_path)] == ["a/top.png", "b/deep.jpg"]


def test_two_folders_of_the_same_name_keep_their_files_apart(tmp_path):
    for centre in ("x", "y"):
        (tmp_path / centre / "images").mkdir(parents=True)
        (tmp_path / centre / "images/p1.jpg").write_bytes(HEADS["jpeg"])
    items = discover(["x/images", "y/images"], root=tmp_path)
    assert len(items) == 2 and len({i.path for i in items}) == 2
    assert {i.location for i in items} == {str(tmp_path / c / "images/p1.jpg") for c in "xy"}


def test_order_is_deterministic(tmp_path):
    _tree(tmp_path)
    assert discover(["a"], root=tmp_path) == discover([str(tmp_path / "a")], root=tmp_path)


@pytest.mark.parametrize("inputs, words", [
    (["missing_folder"], "no such file or folder"),
    (["a", "nope/*.jpg"], "matches no files"),
    (["@absent.txt"], "list file not found"),
    ([], "no INPUT"),
])
def test_a_missing_input_is_one_clear_error_before_any_work(tmp_path, inputs, words):
    _tree(tmp_path)
    with pytest.raises(InputError) as err:
        discover(inputs, root=tmp_path)
    assert words in str(err.value)


def test_a_corrupt_zip_is_kept_as_one_item(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    items = discover(["bad.zip"], root=tmp_path)
    assert [(i.path, i.member) for i in items] == [("bad.zip", None)]


def test_skip_leaves_out_the_outputs(tmp_path):
    _tree(tmp_path)
    (tmp_path / "a/results.parquet").write_bytes(b"PAR1")
    (tmp_path / "a/results.parquet.parts").mkdir()
    (tmp_path / "a/results.parquet.parts/shard-00000-x.parquet").write_bytes(b"PAR1")
    items = discover(["a"], root=tmp_path,
                     skip=[tmp_path / "a/results.parquet", tmp_path / "a/results.parquet.parts"])
    assert not any("results" in i.path for i in items)


def test_manifest_and_path_pattern_give_the_site(tmp_path):
    from mottling.batch.inputs import InputItem
    from mottling.batch.sites import SiteResolver, load_manifest

    (tmp_path / "m.csv").write_text("path,site,patient_id\nvideos/a.mp4,knee,P1\nb.mp4,FINGER,P2\n")
    manifest = load_manifest(tmp_path / "m.csv")
    r = SiteResolver(site="finger", pattern=r"/(knee|finger)s?/", manifest=manifest,
                     manifest_dir=tmp_path)
    item = lambda p: InputItem(p, str(tmp_path / p))  # noqa: E731
    assert r.resolve(item("videos/a.mp4")) == ("knee", None)          # manifest
    assert r.resolve(item("x/b.mp4")) == ("finger", None)             # manifest, by file name
    assert r.resolve(item("centre/knees/c.mp4")) == ("knee", None)    # pattern
    assert r.resolve(item("centre/d.mp4")) == ("finger", None)        # --site
    bad = SiteResolver(pattern=r"centre_(\w+)/")
    site, problem = bad.resolve(item("centre_paris/e.mp4"))
    assert site is None and "'paris'" in problem and "finger or knee" in problem
    assert SiteResolver().resolve(item("f.mp4"))[1].startswith("no body site")
    with pytest.raises(InputError):
        load_manifest(tmp_path / "absent.csv")
