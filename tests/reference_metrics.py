"""Independent references the tests compare the package with (not collected as tests)."""

import numpy as np


def official_eer(target, nontarget):
    """Verbatim logic of the ASVspoof 2019/2021 evaluation package's compute_det_curve/compute_eer."""
    n = target.size + nontarget.size
    scores = np.concatenate((target, nontarget))
    labels = np.concatenate((np.ones(target.size), np.zeros(nontarget.size)))
    idx = np.argsort(scores, kind="mergesort")
    labels = labels[idx]
    tar_sums = np.cumsum(labels)
    non_sums = nontarget.size - (np.arange(1, n + 1) - tar_sums)
    frr = np.concatenate((np.atleast_1d(0), tar_sums / target.size))
    far = np.concatenate((np.atleast_1d(1), non_sums / nontarget.size))
    thr = np.concatenate((np.atleast_1d(scores[idx[0]] - 0.001), scores[idx]))
    i = np.argmin(np.abs(frr - far))
    return np.mean((frr[i], far[i])), thr[i]


def brute_force_eer(bona, spoof):
    """Sweep every distinct threshold (reject score <= t) and the accept-all point."""
    cands = np.concatenate([[np.min(np.concatenate([bona, spoof])) - 0.001], np.unique(np.concatenate([bona, spoof]))])
    best = None
    for t in cands:
        miss, fa = np.mean(bona <= t), np.mean(spoof > t)
        if best is None or abs(miss - fa) < best[0]:
            best = (abs(miss - fa), (miss + fa) / 2, t)
    return best[1], best[2]
