"""Figures for the notebooks. Every helper returns a ``matplotlib.figure.Figure``; ``save_figure``
writes the PNG next to the run so plots exist outside the executed notebook too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from scipy.stats import norm

from xlsr_helpers.data.labels import decide
from xlsr_helpers.evaluate.metrics import compute_det_curve

PALETTE = {"bonafide": "#2b8cbe", "spoof": "#e34a33"}


def _figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6, 3.2)):
    """A Figure outside pyplot: displayed once when a notebook cell returns it, never leaked."""
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.subplots(nrows, ncols)


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def class_balance(counts: pd.DataFrame) -> Figure:
    """Trials per split and label (from ``ManifestResult.counts()``); per corpus and split when the
    counts hold several corpora (``CorpusSet.counts()``)."""
    several = "corpus" in counts and counts["corpus"].nunique() > 1
    counts = counts.assign(split=counts["corpus"] + "\n" + counts["split"]) if several else counts
    per = counts.groupby(["split", "label"], sort=False)["kept"].sum().reset_index()
    fig, ax = _figure(figsize=(max(6.0, 1.2 * per["split"].nunique()), 3.2))
    sns.barplot(data=per, x="split", y="kept", hue="label", palette=PALETTE, ax=ax)
    ax.set(ylabel="trials", xlabel="", title="Class balance per corpus and split" if several else "Class balance per split")
    for c in ax.containers:
        ax.bar_label(c, fmt="%d", fontsize=8)
    return fig


def durations(df: pd.DataFrame) -> Figure:
    """Histogram of utterance durations (``duration_s`` column) per label."""
    fig, ax = _figure(figsize=(6, 3.2))
    sns.histplot(data=df, x="duration_s", hue="label", palette=PALETTE, bins=40, element="step", ax=ax)
    ax.set(xlabel="duration (s)", title="Utterance durations")
    return fig


def training_curves(history: pd.DataFrame, title: str = "") -> Figure:
    """Train/dev loss and dev EER per epoch (and each corpus's, when the history holds several)."""
    fig, (a, b) = _figure(1, 2, figsize=(9, 3.2))
    a.plot(history.epoch, history.train_loss, "o-", label="train")
    a.plot(history.epoch, history.dev_loss, "s-", label="dev")
    a.set(xlabel="epoch", ylabel="cross-entropy", title="Loss")
    a.legend()
    b.plot(history.epoch, 100 * history.dev_eer, "o-", color="#e34a33", label="pooled")
    for column in [c for c in history.columns if c.startswith("dev_eer_")]:  # several corpora: each one's
        b.plot(history.epoch, 100 * history[column], ".--", label=column.removeprefix("dev_eer_"))
    best = history.dev_eer.idxmin()
    b.scatter([history.epoch[best]], [100 * history.dev_eer[best]], s=120, facecolors="none", edgecolors="k",
              label=f"best {100 * history.dev_eer[best]:.2f} %")
    b.set(xlabel="epoch", ylabel="EER (%)", title="Dev EER")
    b.legend()
    if title:
        fig.suptitle(title)
    return fig


def per_attack_bars(table: pd.DataFrame, title: str = "EER per attack") -> Figure:
    """Bar chart of ``metrics.per_attack_eer`` (the pooled row drawn darker)."""
    fig, ax = _figure(figsize=(max(4, 0.5 * len(table) + 2), 3.2))
    colors = ["#636363" if a == "pooled" else "#e34a33" for a in table.attack]
    ax.bar(table.attack.astype(str), 100 * table.eer, color=colors)
    ax.bar_label(ax.containers[0], fmt="%.1f", fontsize=8)
    ax.set(ylabel="EER (%)", title=title)
    return fig


def det_curve(curves: dict[str, pd.DataFrame]) -> Figure:
    """DET curves (normal-deviate axes) for named scored tables with score/label columns."""
    fig, ax = _figure(figsize=(4.6, 4.6))
    ticks = np.array([0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4])
    for name, df in curves.items():
        miss, fa, _ = compute_det_curve(df.score[df.label == "bonafide"], df.score[df.label == "spoof"])
        eps = 1e-4
        ax.plot(norm.ppf(np.clip(fa, eps, 1 - eps)), norm.ppf(np.clip(miss, eps, 1 - eps)), label=name)
    ax.plot(norm.ppf([1e-3, 0.5]), norm.ppf([1e-3, 0.5]), ":", color="grey", lw=1)
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set(xlim=norm.ppf([5e-4, 0.5]), ylim=norm.ppf([5e-4, 0.5]), xlabel="false alarm: spoof accepted (%)",
           ylabel="miss: bonafide rejected (%)", title="DET curve")
    ax.legend()
    return fig


def score_distributions(df: pd.DataFrame, threshold: float | None = None, threshold_from: str = "dev") -> Figure:
    """Score distribution of bonafide and of each attack."""
    d = df.assign(group=np.where(df.label == "bonafide", "bonafide", df.attack.astype(str)))
    order = ["bonafide"] + sorted(set(d.group) - {"bonafide"})
    fig, ax = _figure(figsize=(7, 0.45 * len(order) + 1.6))
    sns.boxplot(data=d, y="group", x="score", order=order, ax=ax, color="#dddddd", fliersize=2)
    sns.stripplot(data=d, y="group", x="score", order=order, ax=ax, size=2.5, alpha=0.5,
                  hue="label", palette=PALETTE, legend=False)
    if threshold is not None:
        ax.axvline(threshold, ls="--", color="k", lw=1, label=f"{threshold_from} EER threshold {threshold:.2f}")
        ax.legend(loc="lower right")
    ax.set(ylabel="", xlabel="score (higher = more bonafide)", title="Score distributions")
    return fig


def confusion_matrix(table: pd.DataFrame, title: str = "Decisions at the dev EER threshold") -> Figure:
    """Trials by true label and decision (``report.confusion_at``), counts and row shares."""
    fig, ax = _figure(figsize=(4.2, 3.4))
    shares = table.div(table.sum(axis=1).replace(0, 1), axis=0)
    labels = np.array([[f"{table.iloc[i, j]:,}\n{100 * shares.iloc[i, j]:.1f} %" for j in range(2)] for i in range(2)])
    sns.heatmap(shares, annot=labels, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=False, ax=ax)
    ax.set(xlabel="decided", ylabel="true", title=title)
    return fig


def reliability_diagram(table: pd.DataFrame, title: str = "Calibration: predicted vs observed") -> Figure:
    """Observed spoof rate against mean predicted p_spoof per bin (``calibration.reliability_table``);
    the diagonal is perfect calibration, marker size the trials in the bin."""
    fig, ax = _figure(figsize=(4.2, 4.0))
    t = table.dropna(subset=["mean_p_spoof"])
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    ax.plot(t.mean_p_spoof, t.spoof_rate, color=PALETTE["spoof"], marker="o")
    ax.scatter(t.mean_p_spoof, t.spoof_rate, s=20 + 200 * t.trials / max(t.trials.max(), 1), color=PALETTE["spoof"],
               alpha=0.4)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted p_spoof", ylabel="observed spoof rate", title=title)
    return fig


def seed_summary(table: pd.DataFrame, split: str = "eval") -> Figure:
    """EER per seed and of the fused system, with the seeds' mean and +-1 sd band (``seeds.summarize``)."""
    t = table[table.split == split].set_index("system")
    systems = [s for s in t.index if s.startswith("seed ")] + ["fused"]
    fig, ax = _figure(figsize=(1.2 * len(systems) + 2, 3.2))
    colors = ["#9ecae1"] * (len(systems) - 1) + ["#3182bd"]
    ax.bar(systems, t.loc[systems, "EER (%)"], color=colors)
    mean, sd = t.loc["mean", "EER (%)"], t.loc["sd", "EER (%)"]
    ax.axhline(mean, color="k", lw=1, label=f"mean {mean:.2f} +- {sd:.2f} %")
    ax.axhspan(mean - sd, mean + sd, color="k", alpha=0.08)
    ax.set_ylabel("EER (%)")
    ax.set_title(f"{split}: seeds and their score-averaged fusion")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def window_scores(windows: pd.DataFrame, errors: pd.DataFrame, threshold: float, threshold_from: str = "dev") -> Figure:
    """Window scores over time for each file of ``errors`` (``report.confident_errors``), from a window
    table (``xlsr score --windows``, ``score_output.window_table``): each window a segment from its start
    to its end at its score, a line through their middles, the threshold dashed: the seconds of a long
    file that look spoofed (below it) or bona fide (above it)."""
    fig, axes = _figure(max(len(errors), 1), 1, figsize=(7, 1.9 * max(len(errors), 1) + 0.4))
    axes = np.atleast_1d(axes)
    for ax, e in zip(axes, errors.itertuples(), strict=False):
        w = windows[windows.utt_id == e.utt_id].sort_values("start")
        color = PALETTE.get(e.label, "k")
        if len(w):
            ax.hlines(w.score, w.start, w.end, color=color, alpha=0.35, lw=3)
            ax.plot((w.start + w.end) / 2, w.score, "o-", color=color, ms=3, lw=1)
        else:
            ax.text(0.5, 0.5, "no window scores for this file", transform=ax.transAxes, ha="center", va="center")
        ax.axhline(threshold, ls="--", color="k", lw=1, label=f"{threshold_from} EER threshold {threshold:.3g}")
        attack = getattr(e, "attack", "")
        ax.set_title(f"{e.error}: {e.utt_id} ({e.label}{', ' + str(attack) if attack not in ('', '-') else ''}), "
                     f"file score {e.score:.3g}", fontsize=9)
        ax.set_ylabel("score")
    if len(errors):
        axes[0].legend(loc="best", fontsize=8)
        axes[len(errors) - 1].set_xlabel("time (s)")
    else:
        axes[0].text(0.5, 0.5, "no errors at this threshold", transform=axes[0].transAxes, ha="center", va="center")
    fig.suptitle("Window scores of the most confident errors (higher = more bonafide)", fontsize=10)
    return fig


def window_scores_over_time(starts_s, ends_s, scores, threshold: float) -> Figure:
    """One file's window scores against time: each window a horizontal segment at its score, coloured by
    the side of the threshold it falls on (which seconds look spoofed), the threshold a dashed line."""
    fig, ax = _figure(figsize=(7, 2.8))
    scores = np.asarray(scores, dtype=float)
    for s, e, v in zip(starts_s, ends_s, scores, strict=True):
        ax.hlines(v, s, e, colors=PALETTE[str(decide(v, threshold))], linewidth=3)
    mids = (np.asarray(starts_s, dtype=float) + np.asarray(ends_s, dtype=float)) / 2
    ax.plot(mids, scores, color="0.6", linewidth=0.8, zorder=0)
    ax.axhline(threshold, color="0.3", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
    ax.set(xlabel="time (s)", ylabel="score (higher = bona fide)", title="Window scores over time")
    ax.legend(loc="best", fontsize=8)
    return fig


def eer_per_corpus(table: pd.DataFrame) -> Figure:
    """EER per corpus with its bootstrap 95 % interval (``evaluate.table``'s results table)."""
    fig, ax = _figure(figsize=(1.3 * len(table) + 2, 3.2))
    eer = table.eer_pct.to_numpy(dtype=float)
    low, high = table.eer_ci_low_pct.to_numpy(dtype=float), table.eer_ci_high_pct.to_numpy(dtype=float)
    has_ci = ~np.isnan(low)
    bars = ax.bar(table.corpus, eer, color="#3182bd")
    ax.errorbar(np.arange(len(table))[has_ci], eer[has_ci], yerr=[eer[has_ci] - low[has_ci], high[has_ci] - eer[has_ci]],
                fmt="none", ecolor="k", capsize=4, lw=1)
    ax.bar_label(bars, labels=[f"{v:.2f}" for v in eer], padding=2, fontsize=8)
    ax.set_ylabel("EER (%)")
    ax.set_title("EER per corpus (bootstrap 95 % interval)")
    ax.tick_params(axis="x", labelrotation=20)
    return fig
