"""Several raters' files -> one training manifest, with every tie listed instead of broken.

Photos: ``majority`` takes the score most raters gave; ``median`` the middle score. A tie (two
scores equally common, or an even number of raters whose middle two differ) has no honest single
answer, so the photo goes to ``ties.csv`` with every rater's score and stays out of the manifest
until the raters settle it. A photo most raters found unreadable, or with fewer usable scores than
``min_raters``, is listed there too, with the reason. Each rater's own score is kept in a
``rater_<name>`` column, which ``mottling evaluate`` reads to compare the model with every rater.

Videos: the consensus CRT is the median of the raters' CRTs (with their spread); the site is the
majority site. A video most raters marked unusable, or whose site the raters split on, is listed.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import zipfile
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath
from statistics import median
from typing import Any

from mottling.agreement import match_paths
from mottling.batch.inputs import ZIP_SEP
from mottling.errors import InputError

log = logging.getLogger(__name__)

META_COLUMNS = ("patient_id", "skin_tone", "ita", "site", "side", "centre", "split")
TIES_COLUMNS = ("path", "kind", "reason", "candidates", "answers")


def _truthy(v: str | None) -> bool:
    return str(v or "").strip().lower() in ("1", "true", "yes")


def read_rater_files(paths: list[Path]) -> tuple[list[str], dict[str, dict[str, dict]]]:
    """(raters, {path: {rater: row}}) from rater CSVs (or any long labels CSV)."""
    by_item: dict[str, dict[str, dict]] = defaultdict(dict)
    raters: set[str] = set()
    for path in paths:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or [])
            if not {"path", "rater"} <= cols:
                raise InputError(f"{path} is not a rater file: it needs path and rater columns")
            for line, row in enumerate(reader, start=2):
                item, rater = (row.get("path") or "").strip(), (row.get("rater") or "").strip()
                if not item or not rater:
                    raise InputError(f"{path}, line {line}: path and rater must not be empty")
                if rater in by_item[item]:
                    raise InputError(f"{path}, line {line}: {rater} answered {item} twice "
                                     "(the same rater file given twice?)")
                by_item[item][rater] = row
                raters.add(rater)
    return sorted(raters), by_item


def _kind(rows: dict[str, dict]) -> str:
    kinds = {(r.get("kind") or "").strip() for r in rows.values()} - {""}
    if kinds:
        return "video" if "video" in kinds else "photo"
    has_crt = any((r.get("crt_s") or "").strip() or _truthy(r.get("unusable")) for r in rows.values())
    return "video" if has_crt else "photo"


def photo_consensus(rows: dict[str, dict], method: str, min_raters: int) -> dict[str, Any]:
    """{"score": int} or {"reason": ..., "candidates": [...]} for one photo."""
    votes = {r: int(float(row["score"])) for r, row in rows.items()
             if (row.get("score") or "").strip()}
    unreadable = [r for r, row in rows.items() if _truthy(row.get("unreadable"))]
    if len(unreadable) > len(votes):
        return {"reason": f"unreadable for {len(unreadable)} of {len(rows)} raters",
                "candidates": sorted(set(votes.values()))}
    if len(votes) < min_raters:
        return {"reason": f"{len(votes)} usable score(s), {min_raters} needed",
                "candidates": sorted(set(votes.values()))}
    counts = Counter(votes.values())
    if method == "majority":
        top = max(counts.values())
        winners = sorted(s for s, c in counts.items() if c == top)
        if len(winners) > 1:
            return {"reason": f"tie: {' vs '.join(str(w) for w in winners)} "
                              f"({top} rater(s) each)", "candidates": winners}
        score = winners[0]
    elif method == "median":
        ordered = sorted(votes.values())
        n = len(ordered)
        lo, hi = ordered[(n - 1) // 2], ordered[n // 2]
        if lo != hi:
            return {"reason": f"tie: the median falls between {lo} and {hi}",
                    "candidates": [lo, hi]}
        score = lo
    else:
        raise ValueError(f"unknown method {method!r}")
    return {"score": score, "n_raters": len(votes), "n_agree": counts[score],
            "unreadable_votes": len(unreadable)}


def video_consensus(rows: dict[str, dict], min_raters: int) -> dict[str, Any]:
    usable = {r: row for r, row in rows.items()
              if not _truthy(row.get("unusable")) and (row.get("crt_s") or "").strip()}
    unusable = {r: (row.get("reason") or "").strip() for r, row in rows.items()
                if _truthy(row.get("unusable"))}
    if len(unusable) > len(usable):
        return {"reason": "unusable: " + "; ".join(f"{r}: {why}" for r, why in unusable.items()),
                "candidates": []}
    if len(usable) < min_raters:
        return {"reason": f"{len(usable)} usable mark(s), {min_raters} needed", "candidates": []}
    sites = Counter(s for s in ((row.get("site") or "").strip() for row in usable.values()) if s)
    top = max(sites.values()) if sites else 0
    winners = sorted(s for s, c in sites.items() if c == top)
    if len(winners) != 1:
        return {"reason": f"site: {' vs '.join(winners) or 'not given'}", "candidates": winners}
    crts = [float(row["crt_s"]) for row in usable.values()]
    releases = [float(row["release_s"]) for row in usable.values()
                if (row.get("release_s") or "").strip()]
    return {"site": winners[0], "crt_s": round(median(crts), 6),
            "release_s": round(median(releases), 6) if releases else None,
            "crt_spread_s": round(max(crts) - min(crts), 6), "n_raters": len(crts)}


def _member_copy(item: str, root: Path, out_dir: Path) -> str | None:
    """Copy a zip member out (training reads files); returns its path relative to ``out_dir``."""
    zip_part, member = item.split(ZIP_SEP, 1)
    parts = PurePosixPath(member).parts
    if ".." in parts or member.startswith("/"):
        return None
    dest = out_dir / "unzipped" / zip_part / Path(*parts)
    if not dest.is_file():
        try:
            with zipfile.ZipFile(root / zip_part) as zf, zf.open(member) as src:
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(dest, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        except (OSError, KeyError, zipfile.BadZipFile) as err:
            log.warning("cannot copy %s out of its zip: %s", item, err)
            return None
    return dest.relative_to(out_dir).as_posix()


def _manifest_path(item: str, root: Path | None, out_dir: Path) -> str:
    if root is None:
        return item
    if ZIP_SEP in item:
        return _member_copy(item, root, out_dir) or item
    return Path(os.path.relpath(root / item, out_dir)).as_posix()


def _read_meta(meta: Path | None, items: list[str]) -> dict[str, dict[str, str]]:
    if meta is None:
        return {}
    with open(meta, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    by_path = {r["path"]: r for r in rows if r.get("path")}
    matched = match_paths(by_path, items)   # {rater path: meta path}
    return {item: {k: by_path[m][k] for k in META_COLUMNS if by_path[m].get(k)}
            for item, m in matched.items()}


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, columns, extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if row.get(k) is None else row.get(k) for k in columns})


def build_consensus(rater_files: list[Path], out_dir: Path, method: str = "majority",
                    min_raters: int | None = None, root: Path | None = None,
                    meta: Path | None = None) -> dict[str, Any]:
    """Write ``manifest.csv`` (photos), ``crt_consensus.csv`` (videos), ``ties.csv`` and
    ``consensus.json`` under ``out_dir``; returns the summary written to the JSON."""
    raters, by_item = read_rater_files(rater_files)
    need = min_raters or len(raters)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    items = sorted(by_item)
    meta_of = _read_meta(meta, items)
    photos, videos, ties = [], [], []
    for item in items:
        rows = by_item[item]
        kind = _kind(rows)
        if kind == "photo":
            c = photo_consensus(rows, method, need)
        else:
            c = video_consensus(rows, need)
        if "reason" in c:
            answers = {r: (row.get("score") or ("unreadable" if _truthy(row.get("unreadable"))
                                                 else "")) if kind == "photo"
                       else (row.get("crt_s") or row.get("reason") or "")
                       for r, row in sorted(rows.items())}
            ties.append({"path": item, "kind": kind, "reason": c["reason"],
                         "candidates": " ".join(str(x) for x in c["candidates"]),
                         "answers": json.dumps(answers, ensure_ascii=False)})
            continue
        base = {"path": _manifest_path(item, root, out_dir), "archive_path": item,
                **meta_of.get(item, {})}
        if kind == "photo":
            per_rater = {f"rater_{r}": rows[r].get("score", "") if r in rows else "" for r in raters}
            photos.append({**base, **c, **per_rater})
        else:
            per_rater = {f"rater_{r}_crt_s": rows[r].get("crt_s", "") if r in rows else ""
                         for r in raters}
            videos.append({**base, **c, **per_rater})
    rater_cols = [f"rater_{r}" for r in raters]
    meta_cols = [k for k in META_COLUMNS if any(k in p for p in photos)]
    manifest = out_dir / "manifest.csv"
    _write_csv(manifest, ["path", "score", *meta_cols, "n_raters", "n_agree", "unreadable_votes",
                          *rater_cols, "archive_path"], photos)
    crt_file = out_dir / "crt_consensus.csv"
    _write_csv(crt_file, ["path", "site", "crt_s", "release_s", "crt_spread_s", "n_raters",
                          *[f"{c}_crt_s" for c in rater_cols], "archive_path"], videos)
    ties_file = out_dir / "ties.csv"
    _write_csv(ties_file, list(TIES_COLUMNS), ties)
    summary = {"raters": raters, "method": method, "min_raters": need,
               "photos_in_manifest": len(photos), "videos": len(videos), "ties": len(ties),
               "manifest": str(manifest), "crt_file": str(crt_file), "ties_file": str(ties_file),
               "paths": "relative to this folder" if root else "as rated (inside the archive)"}
    (out_dir / "consensus.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary
