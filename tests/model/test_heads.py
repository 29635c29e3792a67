"""Heads: the registry, the published layer sizes, saving/loading through the Auto classes and
pipeline, and a stage-1 -> stage-2 run per head that beats chance on the demo corpus."""

import json

import numpy as np
import pytest
import torch

from xlsr_helpers.core.errors import ConfigError
from xlsr_helpers.model.forward import detector_logits, head_of
from xlsr_helpers.model.heads import HEADS, head_class
from xlsr_helpers.model.loading import frames_for, load_detector, load_trained_detector, xlsr_300m_config


def test_registry_holds_the_three_heads_and_names_them_when_asked_for_another():
    assert {"linear", "aasist", "sls"} <= set(HEADS)
    with pytest.raises(ConfigError, match=r"head='rawnet' is not a known head; known: \['aasist', 'linear', 'sls'\]"):
        head_class("rawnet")


def test_xlsr_frame_arithmetic():
    cfg = xlsr_300m_config()
    assert frames_for(cfg, 64600) == 201  # the reference systems' 4.04 s input: 201 frames
    assert frames_for(cfg, 16000) == 49  # 20 ms hop, 25 ms receptive field: (16000 - 400) // 320 + 1


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def lin(i, o):  # weights + bias of a Linear layer
    return i * o + o


def conv(i, o, k):
    return i * o * k + o


def test_published_layer_sizes_on_xls_r_300m():
    cfg = xlsr_300m_config()
    linear = HEADS["linear"](cfg)
    assert _count(linear) == lin(1024, 256) + lin(256, 2)  # classifier_proj_size 256

    sls = HEADS["sls"](cfg, **HEADS["sls"].settings(cfg, 201))
    assert sls.fc1.in_features == 22847  # Linear(22847, 1024) in the SLS reference for 201 frames
    assert _count(sls) == lin(1024, 1) + 2 + lin(22847, 1024) + lin(1024, 2)

    # AASIST as SSL_Anti-spoofing configures it: LL 1024->128, residual blocks 1-32-32-64-64-64-64 (2x3
    # kernels, 1x3 downsampling conv when the channels change), attention 64->128->64, GAT 64, HS-GAL 32.
    blocks = sum(conv(a, b, 6) + 2 * b + conv(b, b, 6) + (conv(a, b, 3) if a != b else 0)
                 for a, b in [(1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64)])
    gat = lin(64, 64) + 64 + 2 * lin(64, 64) + 2 * 64
    hsgal = lambda i, o: 2 * lin(i, i) + 2 * lin(i, o) + 4 * o + 4 * lin(i, o) + 2 * o  # noqa: E731
    pools = 2 * lin(64, 1) + 4 * lin(32, 1)
    expected = (lin(1024, 128) + 2 + blocks + 2 * 64 + conv(64, 128, 1) + 2 * 128 + conv(128, 64, 1)
                + 42 * 64 + 2 * 64 + 2 * gat + 2 * hsgal(64, 32) + 2 * hsgal(32, 32) + pools + lin(160, 2))
    aasist = HEADS["aasist"](cfg)
    assert _count(aasist) == expected == 446_730
    # the reference also allocates a BatchNorm in residual blocks 2-6 that its forward never uses
    assert expected + 2 * (32 + 32 + 64 + 64 + 64) == 447_242


@pytest.fixture(scope="module")
def saved_heads(tiny_backbone, tmp_path_factory):
    out = {}
    for head in ("aasist", "sls"):
        model = load_detector(tiny_backbone, head=head, segment_samples=16000).eval()
        folder = tmp_path_factory.mktemp(head)
        model.save_pretrained(folder)
        out[head] = (model, folder)
    return out


@pytest.mark.parametrize("head", ["aasist", "sls"])
def test_a_saved_head_loads_through_the_auto_classes_and_pipeline(saved_heads, tiny_backbone, head):
    from transformers import AutoModelForAudioClassification, pipeline

    from xlsr_helpers.model.loading import load_feature_extractor
    model, folder = saved_heads[head]
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "xlsr-detector" and config["head"] == head and "auto_map" not in config
    assert (folder / "model.safetensors").is_file()
    x = torch.randn(2, 16000)
    with torch.no_grad():
        ref = model(x).logits
        auto = AutoModelForAudioClassification.from_pretrained(folder).eval()
        assert type(auto).__name__ == "XlsrDetector" and head_of(auto).name == head
        torch.testing.assert_close(auto(x).logits, ref)
        torch.testing.assert_close(detector_logits(load_trained_detector(folder).eval(), x, None), ref)
    load_feature_extractor(tiny_backbone).save_pretrained(folder)
    clf = pipeline("audio-classification", model=str(folder), device="cpu")
    wave = x[0].numpy()
    probs = {r["label"]: r["score"] for r in clf({"raw": wave, "sampling_rate": 16000}, top_k=2)}
    with torch.no_grad():
        logits = auto(**clf.feature_extractor(wave, sampling_rate=16000, return_tensors="pt")).logits[0]
    expected = torch.softmax(logits, -1)
    assert probs["bonafide"] == pytest.approx(expected[0].item(), rel=1e-4)


def test_a_trained_detector_keeps_its_head(saved_heads):
    _, folder = saved_heads["aasist"]
    assert head_of(load_detector(folder)).name == "aasist"  # head='auto'
    assert head_of(load_detector(folder, head="aasist")).name == "aasist"
    with pytest.raises(ConfigError, match="is a trained 'aasist' detector; it cannot switch to the 'sls' head"):
        load_detector(folder, head="sls")


def test_a_bare_encoder_is_refused_for_scoring_whatever_head_was_asked(tiny_backbone):
    from xlsr_helpers.model.loading import ModelLoadError
    with pytest.raises(ModelLoadError, match="not a trained detector"):
        load_trained_detector(tiny_backbone)


def test_sls_fits_other_lengths_to_its_frames(saved_heads):
    model, _ = saved_heads["sls"]
    n = head_of(model).n_frames
    assert n == frames_for(model.config, 16000)
    with torch.no_grad():
        short = model(torch.randn(1, 8000)).logits  # repeat-padded frames
        long = model(torch.randn(1, 40000)).logits  # cropped frames
    assert short.shape == long.shape == (1, 2) and torch.isfinite(short).all() and torch.isfinite(long).all()


def test_sls_fit_frames_repeats_then_crops_as_the_reference_pads():
    from xlsr_helpers.model.heads.sls import fit_frames
    # worked by hand: 3 frames to 7 repeat the clip (0 1 2 0 1 2 0); 10 frames to 7 keep the first 7
    for t, want in ((1, [0] * 7), (3, [0, 1, 2, 0, 1, 2, 0]), (7, list(range(7))), (10, list(range(7)))):
        x = torch.arange(t, dtype=torch.float32)[None, :, None].expand(2, t, 3)
        got = fit_frames(x, 7, 1)
        assert got.shape == (2, 7, 3) and got[0, :, 0].tolist() == want and torch.equal(got[1], got[0])


def test_sls_layer_weights_read_every_layer(saved_heads):
    """The weight of a layer follows that layer's own content (the reference's per-layer gate)."""
    model, _ = saved_heads["sls"]
    head = head_of(model)
    layers = torch.zeros(1, 4, 10, 64)
    layers[0, 2] = 1.0
    mask = torch.ones(1, 10, dtype=torch.bool)
    w = head.layer_weights(layers, mask)[0]
    gate = torch.sigmoid(head.fc0.weight @ torch.ones(64) + head.fc0.bias)
    base = torch.sigmoid(head.fc0.bias)
    torch.testing.assert_close(w, torch.stack([base[0], base[0], gate[0], base[0]]))


# per head: segment samples, stage-1 epochs and learning rate (aasist on short segments: its 2-D convolutions
# are the slow part on CPU). Learning rates low enough that the loss falls smoothly on any CPU's kernels.
RECIPES = {"aasist": (8000, 4, 3e-3), "sls": (32000, 6, 3e-3)}


def _weights(folder) -> dict:
    from safetensors.torch import load_file
    return load_file(folder / "model.safetensors")


def _changed(before: dict, after: dict) -> set[str]:
    """Weights that differ; both files must name all but the positional conv's two weight-norm tensors
    alike (transformers 5.0 saves them under other names than it loads them from)."""
    common = set(before) & set(after)
    assert len(common) >= len(before) - 2
    return {k for k in common if not torch.equal(before[k], after[k])}


@pytest.mark.parametrize("head", sorted(RECIPES))
def test_each_head_trains_exactly_its_parameters_in_both_stages(small_manifests, tiny_backbone, tmp_path, head):
    """Stage 1 (cached head) then stage 2 (prefix / every-layer cache) on the small demo corpus. Asserted
    directly, so that it holds on any CPU: the training loss falls, stage 1 changes every head weight and
    no encoder weight, stage 2 also changes the top layer (and the final layer norm where the head reads
    it) and nothing below;
    the saved stage-2 detector scores eval through Scorer with finite, untied scores."""
    from safetensors.torch import load_file
    from transformers import set_seed

    from xlsr_helpers.data.manifest import read_manifest
    from xlsr_helpers.evaluate.scoring import Scorer
    from xlsr_helpers.train.stage import train_stage
    samples, epochs, lr = RECIPES[head]
    common = dict(segment_samples=samples, batch_size=16, eval_batch_size=32, num_workers=0,
                  early_stopping_patience=10, device="cpu")
    s1 = train_stage(dict(stage=1, model=str(tiny_backbone), head=head, epochs=epochs, learning_rate=lr, **common),
                     small_manifests / "train.csv", small_manifests / "dev.csv", tmp_path / "stage1")
    s2 = train_stage(dict(stage=2, model=str(s1.detector_dir), top_layers=1, epochs=1, learning_rate=1e-3, **common),
                     small_manifests / "train.csv", small_manifests / "dev.csv", tmp_path / "stage2")
    assert s1.cached and s2.cached
    assert json.loads((s2.detector_dir / "config.json").read_text())["head"] == head
    loss = s1.history.train_loss.to_numpy()
    assert len(loss) == epochs and loss[1:].min() < loss[0], f"{head}: training loss did not fall: {loss}"

    w1, w2 = _weights(s1.detector_dir), _weights(s2.detector_dir)
    # transformers 5.0 saves the positional conv's weight norm under other names than it loads them from
    # (parametrizations.* vs weight_g/weight_v): compare the encoder weights both files name alike
    saved = {f"wav2vec2.{k}": v for k, v in load_file(tiny_backbone / "model.safetensors").items()}
    encoder = {k: v for k, v in saved.items() if k in w1}
    assert len(encoder) >= len(saved) - 2
    head_keys = {k for k in w1 if not k.startswith("wav2vec2.")}
    assert head_keys
    assert _changed(encoder, w1) == set(), "stage 1 must leave the encoder untouched"
    set_seed(42)  # train_stage's default seed, set before it builds the detector: the head's starting weights
    init = {k: v for k, v in load_detector(tiny_backbone, head=head, segment_samples=samples).state_dict().items()
            if k in head_keys}
    assert set(init) == head_keys and _changed(init, w1) == head_keys, "stage 1 trains every head weight"
    top = len({k.split(".")[3] for k in encoder if k.startswith("wav2vec2.encoder.layers.")}) - 1
    # a head that reads every layer's output (sls) reads them before the final layer norm, as the reference does
    reached = (f"wav2vec2.encoder.layers.{top}.",) + (() if HEADS[head].needs == "layers" else ("wav2vec2.encoder.layer_norm.",))
    stage2 = {k for k in encoder if k.startswith(reached)}
    assert stage2 and _changed(encoder, w2) == stage2, "stage 2 trains the top layer (and final norm), nothing below"
    assert _changed({k: w1[k] for k in head_keys}, w2) == head_keys  # and the whole head again

    ev = read_manifest(small_manifests / "eval.csv")
    s = Scorer(s2.detector_dir).score_manifest(ev, progress=False)["score"].to_numpy()
    assert len(s) == len(ev) and np.isfinite(s).all() and len(np.unique(s)) > len(s) // 2  # not dead, not tied


def test_an_every_layer_cache_that_does_not_fit_trains_uncached_and_says_why(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from xlsr_helpers.train import cache_plan as plan_module
    from xlsr_helpers.train.cache_plan import cache_plan
    from xlsr_helpers.train.config import TrainConfig
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage(10**12, 10**12 - 2**30, 2**30))  # 1 GiB free
    said = []  # the module's logger, read directly (another test may have reconfigured logging)
    monkeypatch.setattr(plan_module.log, "warning", lambda msg, *args: said.append(msg % args))
    cfg = TrainConfig(head="sls", crop="start")
    assert cache_plan(cfg, "layers", 10 * 2**30, tmp_path) is False
    assert len(said) == 1 and "reads every layer: its cache would take 10.0 GiB" in said[0] and "1.0 GiB free" in said[0]
    assert cache_plan(cfg, "layers", 2**29, tmp_path) is True  # fits
    assert cache_plan(cfg, "prefix", 10 * 2**30, tmp_path) is True  # refused later by build_cache's disk check
    assert cache_plan(TrainConfig(head="sls", cache="on"), "layers", 10 * 2**30, tmp_path) is True  # 'on': not silent
    assert cache_plan(TrainConfig(head="sls", cache="off"), "layers", 1, tmp_path) is False


# --------------------------------------------------------------------------- AASIST, recomputed in numpy
# The graph part of AASIST written out node by node from the paper / SSL_Anti-spoofing's equations (loops
# over nodes, the type-pair attention as the reference's four quadrants), in float64, then compared with
# the head on a fixed input with fixed weights. Temperature 100 makes the heterogeneous attention nearly
# uniform, so only float64 and tight tolerances tell a wrong softmax axis apart there.

def _a(t) -> np.ndarray:
    return t.detach().double().numpy()


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _selu(x: np.ndarray) -> np.ndarray:
    return 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * np.expm1(np.minimum(x, 0)))


def _lin(layer, x: np.ndarray) -> np.ndarray:
    return x @ _a(layer.weight).T + _a(layer.bias)


def _bn(bn, x: np.ndarray) -> np.ndarray:  # eval mode: running statistics, over the last (feature) axis
    return (x - _a(bn.running_mean)) / np.sqrt(_a(bn.running_var) + bn.eps) * _a(bn.weight) + _a(bn.bias)


def _np_gat(layer, x: np.ndarray) -> np.ndarray:
    """out_i = SELU(BN(W1 sum_j a_ij x_j + W2 x_i)), a_ij = softmax over j of w . tanh(P (x_i * x_j)) / T."""
    b, n, _ = x.shape
    w = _a(layer.att_weight)[:, 0]
    out = []
    for bi in range(b):
        rows = []
        for i in range(n):
            scores = np.array([np.tanh(_lin(layer.att_proj, x[bi, i] * x[bi, j])) @ w for j in range(n)])
            att = _softmax(scores / layer.temperature, axis=0)
            rows.append(_lin(layer.proj_with_att, att @ x[bi]) + _lin(layer.proj_without_att, x[bi, i]))
        out.append(rows)
    return _selu(_bn(layer.bn, np.array(out)))


def _np_hetero(layer, x1: np.ndarray, x2: np.ndarray, master: np.ndarray):
    """HS-GAL: both node types projected and joined; the attention vector chosen by the pair's types
    (w11 within type 1, w22 within type 2, w12 across); the master node attends over all nodes."""
    n1 = x1.shape[1]
    x = np.concatenate([_lin(layer.proj_type1, x1), _lin(layer.proj_type2, x2)], axis=1)
    b, n, _ = x.shape
    w11, w22, w12, wm = (_a(p)[:, 0] for p in (layer.att_weight11, layer.att_weight22, layer.att_weight12,
                                               layer.att_weightM))
    master = np.broadcast_to(master, (b, 1, master.shape[-1]))
    nodes, masters = [], []
    for bi in range(b):
        board = np.empty((n, n))
        for i in range(n):
            for j in range(n):
                w = w11 if i < n1 and j < n1 else w22 if i >= n1 and j >= n1 else w12
                board[i, j] = np.tanh(_lin(layer.att_proj, x[bi, i] * x[bi, j])) @ w
        att = _softmax(board / layer.temperature, axis=1)  # over the neighbours j of node i
        m_scores = np.array([np.tanh(_lin(layer.att_projM, x[bi, i] * master[bi, 0])) @ wm for i in range(n)])
        m_att = _softmax(m_scores / layer.temperature, axis=0)  # over the nodes
        masters.append(_lin(layer.proj_with_attM, m_att @ x[bi]) + _lin(layer.proj_without_attM, master[bi, 0]))
        nodes.append(_lin(layer.proj_with_att, att @ x[bi]) + _lin(layer.proj_without_att, x[bi]))
    x = _selu(_bn(layer.bn, np.array(nodes)))
    return x[:, :n1], x[:, n1:], np.array(masters)[:, None, :]


def _np_pool(pool, h: np.ndarray) -> np.ndarray:
    """The top share of the nodes by sigmoid(score), highest first, each scaled by its score."""
    scores = 1 / (1 + np.exp(-_lin(pool.proj, h)))  # (batch, nodes, 1)
    k = max(int(h.shape[1] * pool.ratio), 1)
    return np.array([(h[bi] * scores[bi])[np.argsort(-scores[bi, :, 0])[:k]] for bi in range(h.shape[0])])


def _np_aasist_from_encoder(head, x: np.ndarray) -> np.ndarray:
    """Logits from the 2-D encoder's output x (batch, 64, spectral bins, temporal frames)."""
    conv1, _, bn, conv2 = head.attention  # 1x1 convolutions: a matrix over the channel axis
    c1 = np.einsum("oc,bchw->bohw", _a(conv1.weight)[:, :, 0, 0], x) + _a(conv1.bias)[:, None, None]
    h = _selu(c1)
    h = ((h - _a(bn.running_mean)[:, None, None]) / np.sqrt(_a(bn.running_var)[:, None, None] + bn.eps)
         * _a(bn.weight)[:, None, None] + _a(bn.bias)[:, None, None])
    w = np.einsum("oc,bchw->bohw", _a(conv2.weight)[:, :, 0, 0], h) + _a(conv2.bias)[:, None, None]
    # spectral node k: its bin's frames weighted by a softmax over time; temporal node t: over the bins
    e_s = np.einsum("bckt,bckt->bkc", x, _softmax(w, axis=3)) + _a(head.pos_S)
    e_t = np.einsum("bckt,bckt->btc", x, _softmax(w, axis=2))
    out_s = _np_pool(head.pool_S, _np_gat(head.GAT_layer_S, e_s))
    out_t = _np_pool(head.pool_T, _np_gat(head.GAT_layer_T, e_t))
    branches = []
    for first, second, pool_s, pool_t, master in (
            (head.HtrgGAT_layer_ST11, head.HtrgGAT_layer_ST12, head.pool_hS1, head.pool_hT1, head.master1),
            (head.HtrgGAT_layer_ST21, head.HtrgGAT_layer_ST22, head.pool_hS2, head.pool_hT2, head.master2)):
        t, s, m = _np_hetero(first, out_t, out_s, _a(master))
        s, t = _np_pool(pool_s, s), _np_pool(pool_t, t)
        t_aug, s_aug, m_aug = _np_hetero(second, t, s, m)
        branches.append((t + t_aug, s + s_aug, m + m_aug))
    (t1, s1, m1), (t2, s2, m2) = branches
    t, s, m = np.maximum(t1, t2), np.maximum(s1, s2), np.maximum(m1, m2)
    readout = np.concatenate([np.abs(t).max(1), t.mean(1), np.abs(s).max(1), s.mean(1), m[:, 0]], axis=1)
    return _lin(head.out_layer, readout)


@pytest.fixture(scope="module")
def fixed_aasist():
    """An AASIST head on 16-dim states with fixed random weights and non-trivial BatchNorm statistics."""
    from types import SimpleNamespace

    from xlsr_helpers.model.heads import torch_default_init
    torch.manual_seed(0)
    head = HEADS["aasist"](SimpleNamespace(hidden_size=16))
    head.apply(torch_default_init)
    for m in head.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    return head.double().eval()


def test_graph_attention_layers_match_the_equations(fixed_aasist):
    torch.manual_seed(1)
    x = torch.randn(2, 7, 64, dtype=torch.float64)
    with torch.no_grad():
        got = fixed_aasist.GAT_layer_S(x)
    np.testing.assert_allclose(got.numpy(), _np_gat(fixed_aasist.GAT_layer_S, x.numpy()), rtol=1e-9, atol=1e-11)
    x1, x2 = torch.randn(2, 3, 64, dtype=torch.float64), torch.randn(2, 5, 64, dtype=torch.float64)
    layer = fixed_aasist.HtrgGAT_layer_ST11
    with torch.no_grad():
        got = layer(x1, x2, fixed_aasist.master1)
    for g, e in zip(got, _np_hetero(layer, x1.numpy(), x2.numpy(), _a(fixed_aasist.master1)), strict=True):
        np.testing.assert_allclose(g.numpy(), e, rtol=1e-9, atol=1e-11)
    h = torch.randn(2, 9, 32, dtype=torch.float64)
    with torch.no_grad():
        pooled = fixed_aasist.pool_hS1(h)
    assert pooled.shape == (2, 4, 32)
    np.testing.assert_allclose(pooled.numpy(), _np_pool(fixed_aasist.pool_hS1, h.numpy()), rtol=1e-12)


def test_aasist_forward_matches_an_independent_computation(fixed_aasist):
    """From the 2-D encoder's output (read with a hook) to the logits: attention pooling over the right
    axes, both graph branches, their maximum and the readout, recomputed in numpy."""
    seen = {}

    def keep_input(module, args, out) -> None:  # returns None: the output stays the module's own
        seen["x"] = args[0]
    hook = fixed_aasist.attention.register_forward_hook(keep_input)
    torch.manual_seed(2)
    states = torch.randn(2, 30, 16, dtype=torch.float64)  # 30 frames: 42 spectral x 10 temporal nodes
    try:
        with torch.no_grad():
            logits = fixed_aasist(states)
    finally:
        hook.remove()
    assert seen["x"].shape == (2, 64, 42, 10) and logits.shape == (2, 2)
    expected = _np_aasist_from_encoder(fixed_aasist, seen["x"].numpy())
    np.testing.assert_allclose(logits.numpy(), expected, rtol=1e-9, atol=1e-11)
