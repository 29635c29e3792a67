"""Validated manifests (one tidy table per split) from the official files of each corpus.

The descriptors in ``data_manifest/`` say where the protocol and audio files sit under a root
and how labels map; this module parses, validates and counts. Nothing is silently dropped:
``lines == kept + missing_skipped`` for every split, and every problem names its file and line.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from xlsr_helpers.core.errors import ManifestError
from xlsr_helpers.core.textfile import open_text
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.data.folder_corpus import folder_rows
from xlsr_helpers.data.labels import LABELS
from xlsr_helpers.data.protocol import parse_csv, parse_whitespace, raise_problems, safe_id
from xlsr_helpers.runtime.kaggle_env import glob_input, kaggle_input, mount_patterns

BASE_COLUMNS = ["utt_id", "path", "label", "attack", "speaker", "split", "dataset", "corpus"]
log = logging.getLogger(__name__)


@dataclass
class SplitReport:
    """What building one split found; ``lines == kept + missing_skipped``."""

    split: str
    protocol: str
    lines: int = 0
    kept: int = 0
    missing: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)  # own folders: (path, reason), not trials

    @property
    def missing_skipped(self) -> int:
        return len(self.missing)


@dataclass
class ManifestResult:
    """Manifests per split, the validation reports and the count table."""

    dataset: str
    root: Path
    splits: dict[str, pd.DataFrame]
    reports: dict[str, SplitReport]
    protocol_rows: dict[str, pd.DataFrame]  # every parsed trial, present on disk or not

    def counts(self) -> pd.DataFrame:
        """split x label x attack table of protocol lines, missing files and kept trials."""
        frames = []
        for split, rows in self.protocol_rows.items():
            missing = set(self.reports[split].missing)
            df = rows[["split", "label", "attack"]].copy()
            df["missing"] = rows["utt_id"].isin(missing).astype(int)
            frames.append(df)
        df = pd.concat(frames, ignore_index=True)
        table = df.groupby(["split", "label", "attack"], sort=False).agg(
            lines=("missing", "size"), missing=("missing", "sum")).reset_index()
        table["kept"] = table["lines"] - table["missing"]
        order = {s: i for i, s in enumerate(["train", "dev", "eval", "all"])}
        table = table.sort_values(["split", "label", "attack"], key=lambda c: c.map(order) if c.name == "split" else c)
        return table.reset_index(drop=True)

    def pivot(self) -> pd.DataFrame:
        """Kept trials as a label x attack by split table (splits in corpus order)."""
        counts = self.counts()
        table = counts.pivot_table(index=["label", "attack"], columns="split", values="kept", aggfunc="sum",
                                   fill_value=0)
        return table[[s for s in self.reports if s in table.columns]]

    def summary(self) -> pd.DataFrame:
        """One row per split: lines, kept, missing, bonafide/spoof."""
        rows = []
        for split, rep in self.reports.items():
            df = self.protocol_rows[split]
            rows.append({"split": split, "lines": rep.lines, "bonafide": int((df.label == "bonafide").sum()),
                         "spoof": int((df.label == "spoof").sum()), "missing_skipped": rep.missing_skipped,
                         "kept": rep.kept, "ignored_files": len(rep.ignored), "protocol": rep.protocol})
        return pd.DataFrame(rows)

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write ``<split>.csv``, ``counts.csv``, ``validation.yaml`` and skipped lists."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for split, df in self.splits.items():
            p = out / f"{split}.csv"
            df.to_csv(p, index=False)
            written.append(p)
            rep = self.reports[split]
            if rep.missing:
                skipped = self.protocol_rows[split]
                skipped = skipped[skipped.utt_id.isin(set(rep.missing))]
                sp = out / f"skipped_missing_{split}.csv"
                skipped.to_csv(sp, index=False)
                written.append(sp)
            if rep.ignored:
                ip = out / f"ignored_files_{split}.csv"
                pd.DataFrame(rep.ignored, columns=["path", "reason"]).to_csv(ip, index=False)
                written.append(ip)
        self.counts().to_csv(out / "counts.csv", index=False)
        report = {"dataset": self.dataset, "root": str(self.root),
                  "splits": {s: {"protocol": r.protocol, "lines": r.lines, "kept": r.kept,
                                 "missing_skipped": r.missing_skipped, "ignored_files": len(r.ignored)}
                             for s, r in self.reports.items()}}
        (out / "validation.yaml").write_text(yaml.safe_dump(report, sort_keys=False))
        return written + [out / "counts.csv", out / "validation.yaml"]


# --------------------------------------------------------------------------- descriptors

def find_root(dataset: str, root: str | Path | None = None) -> Path:
    """The given root, or (auto-detection) the first Kaggle mount that holds one of the dataset's
    protocol files: the descriptor's ``roots`` are globbed under the Kaggle input root, both as
    ``<slug>/...`` and ``datasets/<owner>/<slug>/...`` mounts."""
    if root is not None:
        r = Path(root).expanduser()
        if not r.is_dir():
            raise ManifestError(f"data root {r} does not exist or is not a folder")
        return r.resolve()
    desc = load_descriptor(dataset)
    patterns = desc.get("roots", [])
    if not patterns:  # one's own data: nowhere to look for it
        raise ManifestError(f"no data root given for {desc['name']}: set data_root / --root to the folder that holds it")
    found = [c for c in glob_input(patterns) if holds_protocol(c, desc)]
    if found:
        if len(found) > 1:
            log.info("%s: using %s (also found: %s)", desc["name"], found[0], [str(f) for f in found[1:]])
        return found[0]
    protocols = sorted({p for s in desc["splits"].values() for p in s["protocol"]})
    raise ManifestError(
        f"no data root given for {desc['name']} and no folder under {kaggle_input()} holds its protocol files "
        f"{protocols} (searched {mount_patterns(patterns)}); attach the dataset or set data_root / --root")


def holds_protocol(folder: Path, desc: dict) -> bool:
    """Whether ``folder`` is a root of this corpus: it holds a protocol file of one of its splits."""
    return any((folder / p).is_file() for s in desc["splits"].values() for p in s["protocol"])


def _first_existing(root: Path, candidates: list[str], what: str) -> Path:
    for c in candidates:
        if (root / c).is_file():
            return root / c
    raise ManifestError(f"{what}: none of these files exist under {root}: {candidates}")


# --------------------------------------------------------------------------- audio paths

def _existing_files(paths: list[str], by_dir: dict[str, set[str]] | None = None) -> set[str]:
    """Which paths exist, listing each folder once (fast for 100k files)."""
    by_dir = {} if by_dir is None else by_dir
    found = set()
    for p in paths:
        d = os.path.dirname(p)
        if d not in by_dir:
            try:
                by_dir[d] = set(os.listdir(d))
            except (FileNotFoundError, NotADirectoryError):
                by_dir[d] = set()
        if os.path.basename(p) in by_dir[d]:
            found.add(p)
    return found


def _expand_folders(root: Path, template: str) -> list[str]:
    """A template whose folder part holds ``*`` (``flac_E_*/{utt_id}.flac``: a corpus unpacked in
    parts) becomes one template per matching folder, in name order; one that matches no folder stays
    as it is, so that its files are reported missing under the pattern the user can check."""
    folder, _, name = template.rpartition("/")
    if "*" not in folder:
        return [template]
    return [f"{p.relative_to(root).as_posix()}/{name}" for p in sorted(root.glob(folder + "/"))] or [template]


def audio_paths(rows: list[dict], root: Path, templates: str | list[str]) -> list[str]:
    """Each row's audio path: the first of the descriptor's locations that holds the file (a corpus
    split over several folders, or copied with another layout), else the first location (missing)."""
    templates = [templates] if isinstance(templates, str) else list(templates)
    templates = [t for pattern in templates for t in _expand_folders(root, pattern)]
    candidates = [[str(root / t.format(**r)) for r in rows] for t in templates]
    if len(candidates) == 1:
        return candidates[0]
    listing: dict[str, set[str]] = {}
    present = [_existing_files(c, listing) for c in candidates]
    return [next((c[i] for c, ok in zip(candidates, present, strict=True) if c[i] in ok), candidates[0][i])
            for i in range(len(rows))]


def check_confined(paths: list[str], line_numbers: list[int], protocol: Path, root: Path) -> None:
    """Every audio path must stay inside the corpus root (an id like ``../../x`` or an absolute path
    in a CSV would make the manifest read files elsewhere)."""
    base = os.path.normpath(str(root)) + os.sep
    problems = [f"{protocol}:{ln}: audio path {p} lies outside the data root {root}"
                for p, ln in zip(paths, line_numbers, strict=True) if not os.path.normpath(p).startswith(base)]
    raise_problems(problems, "path(s) outside the corpus (pass allow_outside_root / --allow-outside-root to allow)")


def _finish_split(rows: list[dict], line_numbers: list[int], protocol: Path, desc: dict, split: str,
                  root: Path, audio_template: str | list[str] | None) -> pd.DataFrame:
    """Map labels, check duplicates, build paths; raise naming file:line on bad input."""
    label_map = desc["label_map"]
    label_col = desc.get("label_column", "label")
    problems = []
    seen: dict[str, int] = {}
    for row, lineno in zip(rows, line_numbers, strict=True):
        raw = row.get(label_col)
        if raw not in label_map:
            problems.append(f"{protocol}:{lineno}: unknown label {raw!r} (expected one of {sorted(label_map)})")
        if "utt_id" not in row:
            row["utt_id"] = safe_id(Path(row["utt_file"]).stem)  # a file name may hold spaces; an id may not
        elif re.search(r"\s", row["utt_id"]):
            problems.append(f"{protocol}:{lineno}: id {row['utt_id']!r} holds whitespace, which a score file "
                            "(utt_id score) cannot")
        if row["utt_id"] in seen:
            problems.append(f"{protocol}:{lineno}: duplicate id {row['utt_id']} (first on line {seen[row['utt_id']]})")
        else:
            seen[row["utt_id"]] = lineno
    raise_problems(problems, f"bad line(s) in {protocol.name}")
    df = pd.DataFrame(rows)
    df["label"] = df[label_col].map(label_map)
    if audio_template is not None:
        df["path"] = audio_paths(rows, root, audio_template)
    if "attack" not in df:
        df["attack"] = df["label"].map({"bonafide": desc.get("attack_bonafide", "-"), "spoof": "spoof"})
    if "speaker" not in df:
        df["speaker"] = "-"
    df["split"], df["dataset"], df["corpus"] = split, desc["name"], desc["name"]  # data.corpora renames on repeats
    extra = [c for c in df.columns if c not in BASE_COLUMNS and not c.startswith("_")
             and c not in (label_col, "utt_file")]
    return df[BASE_COLUMNS + extra]


def build_manifest(dataset: str, root: str | Path | None = None, splits: list[str] | None = None,
                   allow_missing: bool = False, allow_outside_root: bool = False) -> ManifestResult:
    """Parse, validate and count a corpus; missing audio is an error unless ``allow_missing``; audio
    paths that lead outside the corpus root (``../x``, absolute paths) are an error unless
    ``allow_outside_root`` (for a custom CSV that deliberately points elsewhere)."""
    desc = load_descriptor(dataset)
    root = find_root(dataset, root)
    out, reports, protocol_rows = {}, {}, {}
    wanted = splits or list(desc["splits"])
    for split in wanted:
        if split not in desc["splits"]:
            raise ManifestError(f"{desc['name']} has no split {split!r}; it has {list(desc['splits'])}")
        spec = desc["splits"][split]
        audio_root, ignored = root, []
        if desc["format"] == "folder":
            found = folder_rows(root, desc)
            rows, lines, protocol, ignored, template = found.rows, found.lines, found.listing, found.ignored, "{rel_path}"
            if ignored:
                log.warning("%s: %d file(s) or folder(s) ignored (not audio, hidden or unlisted), e.g. %s; listed in "
                            "ignored_files_%s.csv", root, len(ignored), [p for p, _ in ignored[:3]], split)
        else:
            protocol = _first_existing(root, spec["protocol"], f"{desc['name']} {split} protocol")
            if desc["format"] == "whitespace":
                rows, problems, lines = parse_whitespace(protocol, desc["columns"])
            else:
                rows, problems, lines = parse_csv(protocol, desc["columns"])
            raise_problems(problems, f"malformed line(s) in {protocol.name}")
            template = spec["audio"]
            if desc["format"] == "csv":  # paths in a csv are relative to the csv itself
                audio_root = protocol.parent
        if not rows:
            raise ManifestError(f"{protocol}: no trials found")
        df = _finish_split(rows, lines, protocol, desc, split, audio_root, template)
        if not allow_outside_root:
            check_confined(df["path"].tolist(), lines, protocol, audio_root)
        present = _existing_files(df["path"].tolist())
        is_missing = ~df["path"].isin(present)
        report = SplitReport(split=split, protocol=str(protocol), lines=len(df),
                             missing=df.loc[is_missing, "utt_id"].tolist(), ignored=ignored)
        if report.missing and not allow_missing:
            examples = df.loc[is_missing, "path"].head(5).tolist()
            raise ManifestError(
                f"{report.missing_skipped} of {report.lines} audio files listed in {protocol} are missing "
                f"(e.g. {examples}); fix the root or pass allow_missing=True / --allow-missing to skip them")
        if report.missing and report.missing_skipped == report.lines:
            raise ManifestError(f"none of the {report.lines} audio files listed in {protocol} exist under {audio_root} "
                                f"(e.g. {df.path.iloc[0]}): that is a wrong root, not missing files")
        kept = df[~is_missing].reset_index(drop=True)
        report.kept = len(kept)
        assert report.lines == report.kept + report.missing_skipped
        out[split], reports[split], protocol_rows[split] = kept, report, df
    return ManifestResult(desc["name"], root, out, reports, protocol_rows)


def check_audio(splits: dict[str, pd.DataFrame], out_dir: str | Path, min_seconds: float = 0.5) -> pd.DataFrame:
    """Decode every file of every split; write ``audio_check_<split>.csv`` (flagged files only) and
    return one row per split with the count of each problem (unreadable, silent, short, clipped)."""
    from xlsr_helpers.data.audio import check_files  # decoding needs torch/torchaudio; manifests alone do not
    rows = []
    for split, df in splits.items():
        report = check_files(df["path"].tolist(), min_seconds, flagged_csv=Path(out_dir) / f"audio_check_{split}.csv",
                             ids=df["utt_id"].tolist())  # flagged rows written as they are found
        kind = report.problem[report.problem != ""].str.split(r"[:(]", regex=True).str[0].str.strip()
        rows.append({"split": split, "files": len(report), "unreadable": int((kind == "unreadable").sum()),
                     "silent": int((kind == "silent").sum()), "short": int((kind == "short").sum()),
                     "clipped": int((kind == "clipped").sum()), "median_s": float(report.duration_s.median())})
    return pd.DataFrame(rows)


def read_manifest(path: str | Path) -> pd.DataFrame:
    """Load a manifest CSV written by ``ManifestResult.write`` and check its schema."""
    df = pd.read_csv(open_text(path), dtype=str, keep_default_na=False)
    if "corpus" not in df.columns and "dataset" in df.columns:  # written before runs held several corpora
        df.insert(df.columns.get_loc("dataset") + 1, "corpus", df["dataset"])
    absent = [c for c in BASE_COLUMNS if c not in df.columns]
    if absent:
        raise ManifestError(f"{path}: not a manifest, missing column(s) {absent}")
    bad = ~df["label"].isin(LABELS)
    if bad.any():
        i = int(bad.idxmax())
        raise ManifestError(f"{path}:{i + 2}: unknown label {df.label[i]!r}")
    return df
