"""Which body site (finger or knee) each video was filmed at.

A refill time means nothing without its site (finger > 3 s, knee > 4 s), so the site is never
guessed: it comes from a manifest row, a pattern in the path, or ``--site`` for the whole run, in
that order of precedence. A video with none of these becomes an error row that says so.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from mottling.batch.inputs import ZIP_SEP, InputItem
from mottling.errors import InputError
from mottling.scale import SITES

_PATH_COLUMNS = ("path", "file", "filename", "file_name")


def _normalise_site(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    return text or None


def load_manifest(path: str | Path) -> dict[str, str]:
    """``{relative posix path: site}`` from a CSV with ``path`` and ``site`` columns (or a JSON list
    of records with those keys, such as the video generator's truth.json)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the manifest {path}: {err}") from None
    if path.suffix.lower() == ".json":
        try:
            records = json.loads(text)
        except json.JSONDecodeError as err:
            raise InputError(f"the manifest {path} is not valid JSON: {err}") from None
        if not isinstance(records, list):
            raise InputError(f"the manifest {path} must be a JSON list of records")
    else:
        records = list(csv.DictReader(text.splitlines()))
    if not records:
        raise InputError(f"the manifest {path} has no rows")
    keys = {k.strip().lower(): k for k in records[0]}
    path_key = next((keys[c] for c in _PATH_COLUMNS if c in keys), None)
    if path_key is None or "site" not in keys:
        raise InputError(f"the manifest {path} needs a 'path' and a 'site' column "
                         f"(it has: {', '.join(records[0])})")
    site_key = keys["site"]
    out: dict[str, str] = {}
    for rec in records:
        rel = str(rec.get(path_key) or "").strip().replace("\\", "/")
        site = _normalise_site(rec.get(site_key))
        while rel.startswith("./"):
            rel = rel[2:]
        if rel and site:
            out[rel] = site
    return out


@dataclass
class SiteResolver:
    site: str | None = None
    pattern: str | None = None
    manifest: dict[str, str] = field(default_factory=dict)
    manifest_dir: Path | None = None

    def __post_init__(self) -> None:
        self.site = _normalise_site(self.site)
        if self.site is not None and self.site not in SITES:
            raise InputError(f"--site must be finger or knee, got {self.site!r}")
        try:
            self._regex = re.compile(self.pattern, re.IGNORECASE) if self.pattern else None
        except re.error as err:
            raise InputError(f"--site-from-path is not a valid regular expression: {err}") from None
        self._by_name: dict[str, str | None] = {}
        for rel, site in self.manifest.items():
            name = PurePosixPath(rel).name
            # a file name shared by two manifest rows with different sites identifies nothing
            self._by_name[name] = site if self._by_name.get(name, site) == site else None

    def _from_manifest(self, item: InputItem) -> str | None:
        if not self.manifest:
            return None
        candidates = [item.path]
        if ZIP_SEP in item.path:
            candidates.append(item.path.split(ZIP_SEP, 1)[1])
        if self.manifest_dir is not None and item.member is None:
            try:
                candidates.append(Path(item.location).resolve()
                                  .relative_to(self.manifest_dir.resolve()).as_posix())
            except ValueError:
                pass
        for c in candidates:
            if c in self.manifest:
                return self.manifest[c]
        # last resort: a path suffix match, then a unique file name
        for rel, site in self.manifest.items():
            if item.path.endswith("/" + rel):
                return site
        return self._by_name.get(PurePosixPath(item.path).name)

    def resolve(self, item: InputItem) -> tuple[str | None, str | None]:
        """(site, problem): ``problem`` explains a missing or invalid site."""
        site = self._from_manifest(item)
        source = "the manifest"
        if site is None and self._regex is not None:
            m = self._regex.search(item.path)
            if m:
                groups = [g for g in m.groups() if g]
                site = _normalise_site(groups[0] if groups else m.group(0))
                source = "--site-from-path"
        if site is None:
            site, source = self.site, "--site"
        if site is None:
            return None, ("no body site for this video: give --site, --site-from-path or a "
                          "--manifest with a site column")
        if site not in SITES:
            return None, f"the site from {source} is {site!r}; it must be finger or knee"
        return site, None
