"""``aasist``: the AASIST graph-attention back-end on XLS-R frames, as SSL_Anti-spoofing configures it
(Tak et al., Odyssey 2022: 2021 LA 0.82 % / DF 2.85 % EER with RawBoost).

Published configuration: frames -> Linear(hidden, 128) -> 3x3 max-pool -> six residual blocks
(channels 1-32-32-64-64-64-64, kernels 2x3) -> spectral and temporal attention pooling -> graph
attention (64 dims, temperatures 2.0) -> two heterogeneous graph branches (32 dims, temperature 100,
top-50 % node pooling, a master node each) -> max of the branches -> readout [T_max, T_avg, S_max,
S_avg, master] (160) -> Linear(160, 2). Written from the paper's description and the reference
code's layer sizes. One difference: the reference builds a BatchNorm in each residual block that its
forward never uses (`out = self.conv1(x)` after computing the pre-activation); it is left out here,
so this head has 512 parameters fewer than the reference back-end and computes the same function
(and torchrun's DDP needs no unused-parameter search).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from xlsr_helpers.model.heads import Head, register_head

FRONT_DIM = 128  # Linear(hidden, 128) before the 2-D encoder
CHANNELS = ((1, 32), (32, 32), (32, 64), (64, 64), (64, 64), (64, 64))
GAT_DIMS = (64, 32)
POOL_RATIO = 0.5
TEMPERATURES = (2.0, 2.0, 100.0)  # spectral GAT, temporal GAT, heterogeneous layers


class ResidualBlock(nn.Module):
    """conv(2x3) -> BN -> SELU -> conv(2x3), plus the input (1x3 conv when the channels change)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel_size=(2, 3), padding=(1, 1))
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel_size=(2, 3), padding=(0, 1))
        self.conv_downsample = nn.Conv2d(c_in, c_out, kernel_size=(1, 3), padding=(0, 1)) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.selu(self.bn2(self.conv1(x))))
        return out + (x if self.conv_downsample is None else self.conv_downsample(x))


def _attention_weights(scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax over the neighbour axis of (batch, node, neighbour, 1) scores."""
    return F.softmax(scores / temperature, dim=-2)


def _batch_norm_nodes(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
    return bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class GraphAttention(nn.Module):
    """Graph attention over a fully connected graph of nodes (batch, nodes, dim)."""

    def __init__(self, d_in: int, d_out: int, temperature: float):
        super().__init__()
        self.att_proj = nn.Linear(d_in, d_out)
        self.att_weight = nn.Parameter(torch.empty(d_out, 1))
        self.proj_with_att = nn.Linear(d_in, d_out)
        self.proj_without_att = nn.Linear(d_in, d_out)
        self.bn = nn.BatchNorm1d(d_out)
        self.input_drop = nn.Dropout(0.2)
        self.temperature = temperature

    def init_own_parameters(self) -> None:
        init.xavier_normal_(self.att_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_drop(x)
        pairs = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))
        att = _attention_weights(pairs @ self.att_weight, self.temperature).squeeze(-1)
        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        return F.selu(_batch_norm_nodes(self.bn, x))


class HeteroGraphAttention(nn.Module):
    """Graph attention over two node types (temporal, spectral) with type-pair weights and a master node."""

    def __init__(self, d_in: int, d_out: int, temperature: float):
        super().__init__()
        self.proj_type1, self.proj_type2 = nn.Linear(d_in, d_in), nn.Linear(d_in, d_in)
        self.att_proj, self.att_projM = nn.Linear(d_in, d_out), nn.Linear(d_in, d_out)
        self.att_weight11, self.att_weight22, self.att_weight12, self.att_weightM = (
            nn.Parameter(torch.empty(d_out, 1)) for _ in range(4))
        self.proj_with_att, self.proj_without_att = nn.Linear(d_in, d_out), nn.Linear(d_in, d_out)
        self.proj_with_attM, self.proj_without_attM = nn.Linear(d_in, d_out), nn.Linear(d_in, d_out)
        self.bn = nn.BatchNorm1d(d_out)
        self.input_drop = nn.Dropout(0.2)
        self.temperature = temperature

    def init_own_parameters(self) -> None:
        for w in (self.att_weight11, self.att_weight22, self.att_weight12, self.att_weightM):
            init.xavier_normal_(w)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, master: torch.Tensor):
        n1 = x1.shape[1]
        x = self.input_drop(torch.cat([self.proj_type1(x1), self.proj_type2(x2)], dim=1))
        pairs = torch.tanh(self.att_proj(x.unsqueeze(2) * x.unsqueeze(1)))
        # one attention vector per pair of node types (temporal-temporal, spectral-spectral, across)
        is1 = torch.arange(x.shape[1], device=x.device) < n1
        same1, same2 = is1[:, None] & is1[None, :], ~is1[:, None] & ~is1[None, :]
        scores = torch.where(same1[..., None], pairs @ self.att_weight11,
                             torch.where(same2[..., None], pairs @ self.att_weight22, pairs @ self.att_weight12))
        att = _attention_weights(scores, self.temperature).squeeze(-1)
        m_scores = torch.tanh(self.att_projM(x * master)) @ self.att_weightM  # (batch, nodes, 1)
        m_att = _attention_weights(m_scores, self.temperature)
        master = self.proj_with_attM(m_att.transpose(1, 2) @ x) + self.proj_without_attM(master)
        x = self.proj_with_att(att @ x) + self.proj_without_att(x)
        x = F.selu(_batch_norm_nodes(self.bn, x))
        return x[:, :n1], x[:, n1:], master


class GraphPool(nn.Module):
    """Keep the top ``ratio`` of the nodes by a learned sigmoid score (nodes scaled by it)."""

    def __init__(self, ratio: float, d_in: int, dropout: float = 0.3):
        super().__init__()
        self.ratio = ratio
        self.proj = nn.Linear(d_in, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = torch.sigmoid(self.proj(self.drop(h)))
        # torch.sym_*: the same integers in eager mode; under torch.export the node count stays symbolic, so an
        # ONNX export keeps k a function of the input length (Python's max/int would fix it at the traced length)
        keep = torch.sym_max(torch.sym_int(h.shape[1] * self.ratio), 1)
        idx = torch.topk(scores, keep, dim=1).indices.expand(-1, -1, h.shape[-1])
        return torch.gather(h * scores, 1, idx)


@register_head
class AasistHead(Head):
    name = "aasist"
    needs = "frames"  # every frame of the final-normed last layer; windows are full length, so no mask

    def __init__(self, config, **head_config):
        super().__init__(config)
        d0, d1 = GAT_DIMS
        self.LL = nn.Linear(config.hidden_size, FRONT_DIM)
        self.first_bn = nn.BatchNorm2d(1)
        self.encoder = nn.Sequential(*(ResidualBlock(a, b) for a, b in CHANNELS))
        self.first_bn1 = nn.BatchNorm2d(CHANNELS[-1][1])
        self.attention = nn.Sequential(nn.Conv2d(64, 128, kernel_size=1), nn.SELU(), nn.BatchNorm2d(128),
                                       nn.Conv2d(128, 64, kernel_size=1))
        self.pos_S = nn.Parameter(torch.empty(1, FRONT_DIM // 3, CHANNELS[-1][1]))
        self.master1, self.master2 = nn.Parameter(torch.empty(1, 1, d0)), nn.Parameter(torch.empty(1, 1, d0))
        self.GAT_layer_S = GraphAttention(CHANNELS[-1][1], d0, TEMPERATURES[0])
        self.GAT_layer_T = GraphAttention(CHANNELS[-1][1], d0, TEMPERATURES[1])
        self.HtrgGAT_layer_ST11 = HeteroGraphAttention(d0, d1, TEMPERATURES[2])
        self.HtrgGAT_layer_ST12 = HeteroGraphAttention(d1, d1, TEMPERATURES[2])
        self.HtrgGAT_layer_ST21 = HeteroGraphAttention(d0, d1, TEMPERATURES[2])
        self.HtrgGAT_layer_ST22 = HeteroGraphAttention(d1, d1, TEMPERATURES[2])
        self.pool_S, self.pool_T = GraphPool(POOL_RATIO, d0), GraphPool(POOL_RATIO, d0)
        self.pool_hS1, self.pool_hT1 = GraphPool(POOL_RATIO, d1), GraphPool(POOL_RATIO, d1)
        self.pool_hS2, self.pool_hT2 = GraphPool(POOL_RATIO, d1), GraphPool(POOL_RATIO, d1)
        self.drop, self.drop_way = nn.Dropout(0.5), nn.Dropout(0.2)
        self.out_layer = nn.Linear(5 * d1, 2)

    def init_own_parameters(self) -> None:
        for p in (self.pos_S, self.master1, self.master2):
            init.normal_(p)

    def _branch(self, first: HeteroGraphAttention, second: HeteroGraphAttention, pool_s: GraphPool,
                pool_t: GraphPool, out_t, out_s, master):
        t, s, master = first(out_t, out_s, master)
        s, t = pool_s(s), pool_t(t)
        t_aug, s_aug, m_aug = second(t, s, master)
        return self.drop_way(t + t_aug), self.drop_way(s + s_aug), self.drop_way(master + m_aug)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = self.LL(states).transpose(1, 2).unsqueeze(1)  # (batch, 1, 128, frames)
        x = F.selu(self.first_bn(F.max_pool2d(x, (3, 3))))
        x = F.selu(self.first_bn1(self.encoder(x)))  # (batch, 64, 42, frames / 3)
        w = self.attention(x)
        e_s = (x * F.softmax(w, dim=-1)).sum(-1).transpose(1, 2) + self.pos_S  # spectral nodes
        e_t = (x * F.softmax(w, dim=-2)).sum(-2).transpose(1, 2)  # temporal nodes
        out_s, out_t = self.pool_S(self.GAT_layer_S(e_s)), self.pool_T(self.GAT_layer_T(e_t))
        t1, s1, m1 = self._branch(self.HtrgGAT_layer_ST11, self.HtrgGAT_layer_ST12, self.pool_hS1, self.pool_hT1,
                                  out_t, out_s, self.master1)
        t2, s2, m2 = self._branch(self.HtrgGAT_layer_ST21, self.HtrgGAT_layer_ST22, self.pool_hS2, self.pool_hT2,
                                  out_t, out_s, self.master2)
        t, s, master = torch.maximum(t1, t2), torch.maximum(s1, s2), torch.maximum(m1, m2)
        readout = torch.cat([t.abs().amax(1), t.mean(1), s.abs().amax(1), s.mean(1), master.squeeze(1)], dim=1)
        return self.out_layer(self.drop(readout))
