"""Line-by-line ports of the ASVspoof 5 evaluation package's track-2 code (asvspoof-challenge/asvspoof5 at
fe23d30, ``evaluation-package/``), the references of ``tests/evaluate/test_sasv.py`` (not collected as
tests). Printing and file output are left out; ``sys.exit`` became ``raise SystemExit``; the rest is
the package's code, loops, variable names and ``dtype=object`` arrays included."""

import numpy as np

# util.py
g_cm_bon, g_cm_spf = "bonafide", "spoof"
g_asv_tar, g_asv_non, g_asv_spf = "target", "nontarget", "spoof"


class CostModel:  # a_dcf.py
    def __init__(self, Pspf=0.05, Pnontrg=0.05, Ptrg=0.9, Cmiss=1, Cfa_asv=10, Cfa_cm=20):
        self.Pspf = Pspf
        self.Pnontrg = Pnontrg
        self.Ptrg = Ptrg
        self.Cmiss = Cmiss
        self.Cfa_asv = Cfa_asv
        self.Cfa_cm = Cfa_cm


def _calculate_a_dcf(trg, nontrg, spf, cost_model=CostModel()):  # a_dcf.py
    far_asvs, far_cms, frrs, a_dcf_thresh = compute_a_det_curve(trg, nontrg, spf)
    a_dcfs = np.array([cost_model.Cmiss * cost_model.Ptrg]) * np.array(frrs) + \
        np.array([cost_model.Cfa_asv * cost_model.Pnontrg]) * np.array(far_asvs) + \
        np.array([cost_model.Cfa_cm * cost_model.Pspf]) * np.array(far_cms)
    a_dcfs_normed = normalize(a_dcfs, cost_model)
    min_a_dcf_idx = np.argmin(a_dcfs_normed)
    min_a_dcf = a_dcfs_normed[min_a_dcf_idx]
    min_a_dcf_thresh = a_dcf_thresh[min_a_dcf_idx]
    return {"min_a_dcf": min_a_dcf, "min_a_dcf_thresh": min_a_dcf_thresh}


def normalize(a_dcfs, cost_model):  # a_dcf.py
    a_dcf_all_accept = np.array([cost_model.Cfa_asv * cost_model.Pnontrg + cost_model.Cfa_cm * cost_model.Pspf])
    a_dcf_all_reject = np.array([cost_model.Cmiss * cost_model.Ptrg])
    a_dcfs_normed = a_dcfs / min(a_dcf_all_accept, a_dcf_all_reject)
    return a_dcfs_normed


def compute_a_det_curve(trg_scores, nontrg_scores, spf_scores):  # a_dcf.py
    all_scores = np.concatenate((trg_scores, nontrg_scores, spf_scores))
    labels = np.concatenate(
        (np.ones_like(trg_scores), np.zeros_like(nontrg_scores), np.ones_like(spf_scores) + 1))
    indices = np.argsort(all_scores, kind="mergesort")
    labels = labels[indices]
    scores_sorted = all_scores[indices]
    fp_nontrg, fp_spf, fn = len(nontrg_scores), len(spf_scores), 0
    far_asvs, far_cms, frrs, a_dcf_thresh = [1.], [1.], [0.], [float(np.min(scores_sorted)) - 1e-8]
    for sco, lab in zip(scores_sorted, labels, strict=True):
        if lab == 0:
            fp_nontrg -= 1
        elif lab == 1:
            fn += 1
        elif lab == 2:
            fp_spf -= 1
        else:
            raise ValueError("Label should be one of (0, 1, 2).")
        far_asvs.append(fp_nontrg / len(nontrg_scores))
        far_cms.append(fp_spf / len(spf_scores))
        frrs.append(fn / len(trg_scores))
        a_dcf_thresh.append(sco)
    return far_asvs, far_cms, frrs, a_dcf_thresh


def compute_det_curve(target_scores, nontarget_scores):  # calculate_modules.py
    n_scores = target_scores.size + nontarget_scores.size
    all_scores = np.concatenate((target_scores, nontarget_scores))
    labels = np.concatenate((np.ones(target_scores.size), np.zeros(nontarget_scores.size)))
    indices = np.argsort(all_scores, kind="mergesort")
    labels = labels[indices]
    tar_trial_sums = np.cumsum(labels)
    nontarget_trial_sums = nontarget_scores.size - (np.arange(1, n_scores + 1) - tar_trial_sums)
    frr = np.concatenate((np.atleast_1d(0), tar_trial_sums / target_scores.size))
    far = np.concatenate((np.atleast_1d(1), nontarget_trial_sums / nontarget_scores.size))
    thresholds = np.concatenate((np.atleast_1d(all_scores[indices[0]] - 0.001), all_scores[indices]))
    return frr, far, thresholds


def compute_Pmiss_Pfa_Pspoof_curves(tar_scores, non_scores, spf_scores):  # calculate_modules.py
    all_scores = np.concatenate((tar_scores, non_scores, spf_scores))
    labels = np.concatenate((np.ones(tar_scores.size), np.zeros(non_scores.size), -1 * np.ones(spf_scores.size)))
    indices = np.argsort(all_scores, kind="mergesort")
    labels = labels[indices]
    tar_sums = np.cumsum(labels == 1)
    non_sums = np.cumsum(labels == 0)
    spoof_sums = np.cumsum(labels == -1)
    Pmiss = np.concatenate((np.atleast_1d(0), tar_sums / tar_scores.size))
    Pfa_non = np.concatenate((np.atleast_1d(1), 1 - (non_sums / non_scores.size)))
    Pfa_spoof = np.concatenate((np.atleast_1d(1), 1 - (spoof_sums / spf_scores.size)))
    thresholds = np.concatenate((np.atleast_1d(all_scores[indices[0]] - 0.001), all_scores[indices]))
    return Pmiss, Pfa_non, Pfa_spoof, thresholds


def compute_tDCF(bonafide_score_cm, spoof_score_cm, Pfa_asv, Pmiss_asv, Pfa_spoof_asv, cost_model):
    """calculate_modules.py (print_cost False)."""
    if cost_model["Ptar"] < 0 or cost_model["Pnon"] < 0 or cost_model["Pspoof"] < 0 or \
            np.abs(cost_model["Ptar"] + cost_model["Pnon"] + cost_model["Pspoof"] - 1) > 1e-10:
        raise SystemExit("ERROR: Your prior probabilities should be positive and sum up to one.")
    if Pfa_spoof_asv is None:
        raise SystemExit("ERROR: you should provide false alarm rate of spoof tests against your ASV system.")
    combined_scores = np.concatenate((bonafide_score_cm, spoof_score_cm))
    if np.isnan(combined_scores).any() or np.isinf(combined_scores).any():
        raise SystemExit("ERROR: Your scores contain nan or inf.")
    n_uniq = np.unique(combined_scores).size
    if n_uniq < 3:
        raise SystemExit("ERROR: You should provide soft CM scores - not binary decisions")
    Pmiss_cm, Pfa_cm, CM_thresholds = compute_det_curve(bonafide_score_cm, spoof_score_cm)
    C0 = cost_model["Ptar"] * cost_model["Cmiss"] * Pmiss_asv + cost_model["Pnon"] * cost_model["Cfa"] * Pfa_asv
    C1 = cost_model["Ptar"] * cost_model["Cmiss"] - (cost_model["Ptar"] * cost_model["Cmiss"] * Pmiss_asv
                                                     + cost_model["Pnon"] * cost_model["Cfa"] * Pfa_asv)
    C2 = cost_model["Pspoof"] * cost_model["Cfa_spoof"] * Pfa_spoof_asv
    if C0 < 0 or C1 < 0 or C2 < 0:
        raise SystemExit("You should never see this error")
    tDCF = C0 + C1 * Pmiss_cm + C2 * Pfa_cm
    tDCF_default = C0 + np.minimum(C1, C2)
    tDCF_norm = tDCF / tDCF_default
    return tDCF_norm, CM_thresholds


def compute_teer(Pmiss_CM, Pfa_CM, tau_CM, Pmiss_ASV, Pfa_non_ASV, Pfa_spf_ASV, tau_ASV,
                 flag_return_index=False):  # calculate_modules.py
    rho_vals = [0.5]
    tEER_val = np.empty([len(rho_vals), len(tau_ASV)], dtype=float)
    for rho_idx, rho_spf in enumerate(rho_vals):
        tEER_idx_CM = np.empty(len(tau_ASV), dtype=int)
        tEER_path = np.empty([len(rho_vals), len(tau_ASV), 2], dtype=float)
        Pmiss_total = np.empty(len(tau_ASV), dtype=float)
        Pfa_total = np.empty(len(tau_ASV), dtype=float)
        min_tEER = np.inf
        argmin_tEER = np.empty(2)
        xpoint_crit_best = np.inf
        xpoint = np.empty(2)
        xpoint_index = []
        for tau_ASV_idx, tau_ASV_val in enumerate(tau_ASV):
            Pmiss_tdm = Pmiss_CM + (1 - Pmiss_CM) * Pmiss_ASV[tau_ASV_idx]
            Pfa_tdm = (1 - rho_spf) * (1 - Pmiss_CM) * Pfa_non_ASV[tau_ASV_idx] + \
                rho_spf * Pfa_CM * Pfa_spf_ASV[tau_ASV_idx]
            h = Pmiss_tdm - Pfa_tdm
            tmp = np.argmin(abs(h))
            tEER_idx_CM[tau_ASV_idx] = tmp
            if Pmiss_ASV[tau_ASV_idx] < (1 - rho_spf) * Pfa_non_ASV[tau_ASV_idx] + rho_spf * Pfa_spf_ASV[tau_ASV_idx]:
                Pmiss_total[tau_ASV_idx] = Pmiss_tdm[tmp]
                Pfa_total[tau_ASV_idx] = Pfa_tdm[tmp]
                tEER_val[rho_idx, tau_ASV_idx] = np.mean([Pfa_total[tau_ASV_idx], Pmiss_total[tau_ASV_idx]])
                tEER_path[rho_idx, tau_ASV_idx, 0] = tau_ASV_val
                tEER_path[rho_idx, tau_ASV_idx, 1] = tau_CM[tmp]
                if tEER_val[rho_idx, tau_ASV_idx] < min_tEER:
                    min_tEER = tEER_val[rho_idx, tau_ASV_idx]
                    argmin_tEER[0] = tau_ASV_val
                    argmin_tEER[1] = tau_CM[tmp]
                LHS = Pfa_non_ASV[tau_ASV_idx] / Pfa_spf_ASV[tau_ASV_idx]
                RHS = Pfa_CM[tmp] / (1 - Pmiss_CM[tmp])
                crit = abs(LHS - RHS)
                if crit < xpoint_crit_best:
                    xpoint_crit_best = crit
                    xpoint[0] = tau_ASV_val
                    xpoint[1] = tau_CM[tmp]
                    xpoint_tEER = Pfa_spf_ASV[tau_ASV_idx] * Pfa_CM[tmp]
                    xpoint_index = [tau_ASV_idx, tmp]
            else:
                tEER_path[rho_idx, tau_ASV_idx, 0] = np.nan
                tEER_path[rho_idx, tau_ASV_idx, 1] = np.nan
                Pmiss_total[tau_ASV_idx] = np.nan
                Pfa_total[tau_ASV_idx] = np.nan
                tEER_val[rho_idx, tau_ASV_idx] = np.nan
        if not flag_return_index:
            return xpoint_tEER * 100
        else:
            return xpoint_tEER * 100, xpoint_index


def compute_teer_accelerated(Pmiss_CM, Pfa_CM, tau_CM, Pmiss_ASV, Pfa_non_ASV, Pfa_spf_ASV, tau_ASV,
                             size_decimated=3000, bin_width=1600):  # calculate_modules.py
    ds_asv_ratio = tau_ASV.shape[0] // size_decimated
    ds_cm_ratio = tau_CM.shape[0] // size_decimated
    if ds_asv_ratio > 0 and ds_cm_ratio > 0:
        tmp_asv_idx = np.arange(tau_ASV.shape[0])[::ds_asv_ratio]
        tmp_cm_idx = np.arange(tau_CM.shape[0])[::ds_cm_ratio]
        _, approx_teer_index = compute_teer(
            Pmiss_CM[tmp_cm_idx], Pfa_CM[tmp_cm_idx], tau_CM[tmp_cm_idx],
            Pmiss_ASV[tmp_asv_idx], Pfa_non_ASV[tmp_asv_idx],
            Pfa_spf_ASV[tmp_asv_idx], tau_ASV[tmp_asv_idx],
            flag_return_index=True)
    else:
        approx_teer_index = []
    if len(approx_teer_index):
        cen_asv_idx = approx_teer_index[0] * ds_asv_ratio
        cen_cm_idx = approx_teer_index[1] * ds_cm_ratio
        asv_bin_1 = np.max([cen_asv_idx - bin_width, 0])
        asv_bin_2 = np.min([cen_asv_idx + bin_width, len(tau_ASV)])
        cm_bin_1 = np.max([cen_cm_idx - bin_width, 0])
        cm_bin_2 = np.min([cen_cm_idx + bin_width, len(tau_CM)])
        teer = compute_teer(
            Pmiss_CM[cm_bin_1:cm_bin_2], Pfa_CM[cm_bin_1:cm_bin_2], tau_CM[cm_bin_1:cm_bin_2],
            Pmiss_ASV[asv_bin_1:asv_bin_2], Pfa_non_ASV[asv_bin_1:asv_bin_2],
            Pfa_spf_ASV[asv_bin_1:asv_bin_2], tau_ASV[asv_bin_1:asv_bin_2])
    else:
        teer = compute_teer(Pmiss_CM, Pfa_CM, tau_CM, Pmiss_ASV, Pfa_non_ASV, Pfa_spf_ASV, tau_ASV)
    return teer


def calculate_aDCF_tdcf_tEER(cm_scores, asv_scores, sasv_scores, cm_keys, asv_keys):
    """calculate_metrics.py, with the organisers' fixed ASV error rates (``asv_scores_org`` None, as
    ``evaluation.py`` calls it); returns adcf alone when CM or ASV scores are None."""
    Pspoof = 0.05
    tdcf_cost_model = {"Pspoof": Pspoof, "Ptar": (1 - Pspoof) * 0.99, "Pnon": (1 - Pspoof) * 0.01,
                       "Cmiss": 1, "Cfa": 10, "Cfa_spoof": 10, "Cmiss_asv": 1, "Cfa_asv": 10, "Cmiss_cm": 1,
                       "Cfa_cm": 10}
    Pfa_non_ASV_org = 0.01881016557566423
    Pmiss_ASV_org = 0.01880141010575793
    Pfa_spf_ASV_org = 0.4607082907604729
    cost_adcf = CostModel(Ptrg=tdcf_cost_model["Ptar"], Pnontrg=tdcf_cost_model["Pnon"],
                          Pspf=tdcf_cost_model["Pspoof"], Cmiss=tdcf_cost_model["Cmiss"],
                          Cfa_asv=tdcf_cost_model["Cfa"], Cfa_cm=tdcf_cost_model["Cfa_spoof"])
    tar_sasv = sasv_scores[asv_keys == g_asv_tar]
    nontar_sasv = sasv_scores[asv_keys == g_asv_non]
    spoof_sasv = sasv_scores[asv_keys == g_asv_spf]
    adcf = _calculate_a_dcf(tar_sasv, nontar_sasv, spoof_sasv, cost_adcf)["min_a_dcf"]
    if asv_scores is None or cm_scores is None:
        return adcf
    bona_cm = cm_scores[cm_keys == g_cm_bon]
    spoof_cm = cm_scores[cm_keys == g_cm_spf]
    X_tar = np.array([asv_scores[asv_keys == g_asv_tar], cm_scores[asv_keys == g_asv_tar]], dtype=object)
    X_non = np.array([asv_scores[asv_keys == g_asv_non], cm_scores[asv_keys == g_asv_non]], dtype=object)
    X_spf = np.array([asv_scores[asv_keys == g_asv_spf], cm_scores[asv_keys == g_asv_spf]], dtype=object)
    tDCF_curve, _ = compute_tDCF(bona_cm, spoof_cm, Pfa_non_ASV_org, Pmiss_ASV_org, Pfa_spf_ASV_org, tdcf_cost_model)
    min_tDCF_index = np.argmin(tDCF_curve)
    min_tDCF = tDCF_curve[min_tDCF_index]
    Pmiss_ASV, Pfa_non_ASV, Pfa_spf_ASV, tau_ASV = compute_Pmiss_Pfa_Pspoof_curves(X_tar[0], X_non[0], X_spf[0])
    Pmiss_CM, Pfa_CM, tau_CM = compute_det_curve(np.concatenate([X_tar[1], X_non[1]]), X_spf[1])
    teer = compute_teer_accelerated(Pmiss_CM, Pfa_CM, tau_CM, Pmiss_ASV, Pfa_non_ASV, Pfa_spf_ASV, tau_ASV)
    return adcf, min_tDCF, teer
