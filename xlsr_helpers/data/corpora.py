"""Several corpora in one run: ``dataset="asvspoof2019-la+asvspoof5"`` and its manifests joined.

``parse_corpora`` is the one reading of a ``dataset`` spec (descriptors by name or by path, joined
with ``+``) and its ``data_root`` (``auto``, or one root per corpus joined with ``+`` in the same
order); ``build_corpora`` builds each corpus's manifests and joins them split by split.

Trial ids stay the organisers' ids when a run reads one corpus. When it reads several, every id
becomes ``<corpus>/<id>`` (the protocol's id kept in ``source_id``): two corpora may reuse an id,
and caches, score files and fingerprints are keyed by ids, so they must be unique across the run.
A corpus is named by its descriptor's ``name``; a descriptor given twice (two own folders read
with ``folder.yaml``) names its second corpus ``<name>-2``, its third ``<name>-3``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from xlsr_helpers.core.errors import ManifestError, short
from xlsr_helpers.data.descriptor import load_descriptor
from xlsr_helpers.data.manifest import ManifestResult, build_manifest

JOIN = "+"
AUTO = "auto"
SPLIT_ORDER = ("train", "dev", "eval", "all")


@dataclass(frozen=True)
class CorpusSpec:
    """One corpus of a run: its name in the run, its descriptor (name or path, as given) and its
    root as given (``auto``, ``demo:<size>`` or a folder)."""

    corpus: str
    descriptor: str
    root: str


def split_joined(text: str, what: str) -> list[str]:
    """The parts of an ``a+b`` spec; an existing file or folder whose name holds ``+`` is one part."""
    if Path(text).expanduser().exists() or JOIN not in text:
        return [text]
    parts = [p.strip() for p in text.split(JOIN)]
    if any(not p for p in parts):
        raise ManifestError(f"{what}={short(text)}: an empty part between '{JOIN}' signs")
    return parts


def parse_corpora(dataset: str, data_root: str | None = AUTO) -> list[CorpusSpec]:
    """The corpora of a ``dataset`` spec with their roots. ``data_root`` None or ``auto``: each corpus
    is looked for on Kaggle; otherwise one root per corpus (``auto`` allowed for any of them)."""
    if not isinstance(dataset, str) or not dataset.strip():
        raise ManifestError(f"dataset={short(dataset)}: expected descriptor names or .yaml paths joined with '{JOIN}'")
    descriptors = split_joined(dataset, "dataset")
    roots = [AUTO] * len(descriptors) if data_root in (None, AUTO) else split_joined(str(data_root), "data_root")
    if len(roots) != len(descriptors):
        raise ManifestError(f"data_root={short(data_root)} gives {len(roots)} root(s) for the {len(descriptors)} corpora "
                            f"of dataset={short(dataset)}: join one root per corpus with '{JOIN}', in the same order, "
                            "or give 'auto'")
    names = [load_descriptor(d)["name"] for d in descriptors]
    specs, seen = [], {}
    for descriptor, name, root in zip(descriptors, names, roots, strict=True):
        seen[name] = seen.get(name, 0) + 1
        corpus = name if seen[name] == 1 else f"{name}-{seen[name]}"
        if len(descriptors) > 1 and re.search(r"[\s/]", corpus):
            raise ManifestError(f"{descriptor}: name {corpus!r} holds whitespace or '/', which the trial ids "
                                "<corpus>/<id> of a run on several corpora cannot")
        specs.append(CorpusSpec(corpus, descriptor, root))
    return specs


def corpus_of(df: pd.DataFrame) -> list[str]:
    """Each row's corpus (a manifest table made by hand may hold only ``dataset``)."""
    column = "corpus" if "corpus" in df.columns else "dataset" if "dataset" in df.columns else None
    return df[column].astype(str).tolist() if column else ["-"] * len(df)


def unique_ids(df: pd.DataFrame, corpus: str) -> pd.DataFrame:
    """A corpus's rows in a run on several corpora: ``corpus`` set, ids ``<corpus>/<id>``."""
    out = df.copy()
    out["corpus"] = corpus
    out.insert(len(out.columns), "source_id", out["utt_id"])
    out["utt_id"] = corpus + "/" + out["utt_id"]
    return out


class CorpusSet:
    """The manifests of one or more corpora, joined per split: train is every corpus's train split,
    dev every corpus's dev split; a corpus without a split adds nothing to it (``lacking``)."""

    def __init__(self, specs: list[CorpusSpec], parts: list[ManifestResult]):
        self.specs, self.parts = specs, parts
        self.corpora = [s.corpus for s in specs]
        if len(parts) > 1:
            for spec, part in zip(specs, parts, strict=True):
                part.splits = {s: unique_ids(df, spec.corpus) for s, df in part.splits.items()}
                part.protocol_rows = {s: unique_ids(df, spec.corpus) for s, df in part.protocol_rows.items()}
                for rep in part.reports.values():
                    rep.missing = [f"{spec.corpus}/{i}" for i in rep.missing]
        names = {s for p in parts for s in p.splits}
        self.split_names = [s for s in SPLIT_ORDER if s in names] + sorted(names - set(SPLIT_ORDER))
        self.splits = {s: pd.concat([p.splits[s] for p in parts if s in p.splits], ignore_index=True)
                       for s in self.split_names}

    @property
    def dataset(self) -> str:
        return JOIN.join(p.dataset for p in self.parts)

    @property
    def roots(self) -> list[Path]:
        return [p.root for p in self.parts]

    def lacking(self) -> dict[str, list[str]]:
        """Each corpus's missing splits among those the run has (a corpus lacking none is left out)."""
        out = {c: [s for s in self.split_names if s not in p.splits] for c, p in zip(self.corpora, self.parts, strict=True)}
        return {c: s for c, s in out.items() if s}

    def lacking_text(self) -> str:
        """One line: which corpus lacks which split (so adds nothing to it)."""
        lacking = self.lacking()
        if not lacking:
            return f"every corpus ({', '.join(self.corpora)}) has the split(s) {', '.join(self.split_names)}"
        return "; ".join(f"{c} has no {' or '.join(s)} split, so adds nothing to it" for c, s in lacking.items())

    def _each(self, table: str) -> pd.DataFrame:
        frames = [getattr(p, table)().assign(corpus=c) for c, p in zip(self.corpora, self.parts, strict=True)]
        df = pd.concat(frames, ignore_index=True)
        return df[["corpus", *[c for c in df.columns if c != "corpus"]]]

    def counts(self) -> pd.DataFrame:
        """corpus x split x label x attack: protocol lines, missing files and kept trials."""
        return self._each("counts")

    def summary(self) -> pd.DataFrame:
        """One row per corpus and split: lines, kept, missing, bonafide/spoof."""
        return self._each("summary")

    def pivot(self) -> pd.DataFrame:
        """Kept trials, corpus x label x attack by split (splits in run order, 0 where a corpus lacks one)."""
        table = self.counts().pivot_table(index=["corpus", "label", "attack"], columns="split", values="kept",
                                          aggfunc="sum", fill_value=0, sort=False)
        return table[[s for s in self.split_names if s in table.columns]]

    def by_label(self) -> pd.DataFrame:
        """Kept trials per corpus x split, one column per label (a split a corpus lacks has no row)."""
        table = self.counts().pivot_table(index=["corpus", "split"], columns="label", values="kept", aggfunc="sum",
                                          fill_value=0, sort=False)
        table.columns.name = None
        return table.reset_index()

    def write(self, out_dir: str | Path) -> list[Path]:
        """``<split>.csv`` (every corpus's rows), ``counts.csv``, ``validation.yaml`` and the lists of
        skipped and ignored files; one corpus writes exactly what ``ManifestResult.write`` writes."""
        if len(self.parts) == 1:
            return self.parts[0].write(out_dir)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for split, df in self.splits.items():
            df.to_csv(out / f"{split}.csv", index=False)
            written.append(out / f"{split}.csv")
            skipped = [p.protocol_rows[split][p.protocol_rows[split].utt_id.isin(set(p.reports[split].missing))]
                       for p in self.parts if split in p.reports and p.reports[split].missing]
            if skipped:
                pd.concat(skipped, ignore_index=True).to_csv(out / f"skipped_missing_{split}.csv", index=False)
                written.append(out / f"skipped_missing_{split}.csv")
            ignored = [pd.DataFrame(p.reports[split].ignored, columns=["path", "reason"]).assign(corpus=c)
                       for c, p in zip(self.corpora, self.parts, strict=True) if split in p.reports and p.reports[split].ignored]
            if ignored:
                pd.concat(ignored, ignore_index=True).to_csv(out / f"ignored_files_{split}.csv", index=False)
                written.append(out / f"ignored_files_{split}.csv")
        self.counts().to_csv(out / "counts.csv", index=False)
        report = {"dataset": self.dataset, "corpora": {
            c: {"dataset": p.dataset, "descriptor": s.descriptor, "root": str(p.root),
                "splits": {k: {"protocol": r.protocol, "lines": r.lines, "kept": r.kept,
                               "missing_skipped": r.missing_skipped, "ignored_files": len(r.ignored)}
                           for k, r in p.reports.items()}}
            for c, s, p in zip(self.corpora, self.specs, self.parts, strict=True)}, "lacking": self.lacking()}
        (out / "validation.yaml").write_text(yaml.safe_dump(report, sort_keys=False))
        return written + [out / "counts.csv", out / "validation.yaml"]


def build_corpora(specs: list[CorpusSpec], roots: list[str | Path | None], splits: list[str] | None = None,
                  allow_missing: bool = False, allow_outside_root: bool = False) -> CorpusSet:
    """Every corpus's manifests (``manifest.build_manifest``, each from its root; None: found on
    Kaggle), joined per split. ``splits``: only these, from each corpus that has them; a split no
    corpus has is an error. The same corpus twice (descriptor and root) is an error."""
    if len(roots) != len(specs):
        raise ManifestError(f"{len(roots)} root(s) for {len(specs)} corpora")
    descs = [load_descriptor(s.descriptor) for s in specs]
    several = len(specs) > 1  # one corpus: build_manifest's own messages for a split it lacks
    if splits and several:
        unknown = [w for w in splits if not any(w in d["splits"] for d in descs)]
        if unknown:
            raise ManifestError(f"no corpus of {JOIN.join(s.corpus for s in specs)} has the split(s) {unknown}")
    parts, seen = [], {}
    for spec, desc, root in zip(specs, descs, roots, strict=True):
        wanted = [w for w in splits if w in desc["splits"] or not several] if splits else None
        if wanted == []:
            raise ManifestError(f"{spec.corpus} has none of the split(s) {splits} (it has {list(desc['splits'])}): "
                                "leave it out of dataset")
        part = build_manifest(spec.descriptor, root, splits=wanted, allow_missing=allow_missing,
                              allow_outside_root=allow_outside_root)
        key = (desc["name"], str(part.root))
        if key in seen:
            raise ManifestError(f"dataset lists {desc['name']} at {part.root} twice ({seen[key]} and {spec.corpus}): "
                                "its trials would be read twice")
        seen[key] = spec.corpus
        parts.append(part)
    return CorpusSet(specs, parts)
