"""A randomised classifier over a constrained run's iterates and best responses (Cotter et al.'s "shrinking" step).

Descent-ascent's guarantee is for a *distribution* over the iterates: :func:`mix_iterates` finds the best one by a
linear program (:func:`best_mixture`), a randomised classifier (:class:`MixtureHead`) that can meet equalized odds
where one linear head cannot. :func:`best_response_heads` adds the Lagrangian's minimisers for the hard rate
constraints (Agarwal et al. 2018) as candidates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import validation as check
from .head import FairHeadResult, LinearHead
from .surrogates import _check_constraint

# --------------------------------------------------------------------------------------------
# A randomised classifier over the iterates (Cotter et al.'s "shrinking" step)
# --------------------------------------------------------------------------------------------


def _rate_rows(y: np.ndarray, groups: np.ndarray, constraint: str) -> tuple[np.ndarray, list[str], np.ndarray]:
    """The rate differences a constraint compares, as a linear map of the decisions.

    Returns ``A`` (R, n), the row names and ``s`` (R,): decisions ``h`` (n,) of 0/1 have signed rate differences
    ``A @ h``, row ``r = (rate, a, b)`` being ``A_ri = [i in cell a] / n_a - [i in cell b] / n_b`` (cell = group,
    and within ``y = 0`` for FPR and ``y = 1`` for TPR for EO). ``s_r = min(n_a, n_b) / n``, the smaller cell's
    share of the data. One row per pair of groups ``a < b`` present for that rate.
    """
    if constraint not in ("dp", "eo"):
        raise ValueError(f"Randomised mixtures and best responses support 'dp' and 'eo', not {constraint!r}: a group's "
                         "accuracy is not a linear function of the decisions (it has a constant term).")
    rows, names, share = [], [], []
    conds = [(None, "selection")] if constraint == "dp" else [(0, "FPR"), (1, "TPR")]
    present = sorted(np.unique(groups).tolist())
    for label, rate in conds:
        base = np.ones(len(y), bool) if label is None else (y == label)
        cells = {a: base & (groups == a) for a in present if (base & (groups == a)).any()}
        keys = sorted(cells)
        for i, a in enumerate(keys):
            for b in keys[i + 1:]:
                na, nb = cells[a].sum(), cells[b].sum()
                rows.append(cells[a] / na - cells[b] / nb)
                names.append(f"{rate}[{a}] - {rate}[{b}]")
                share.append(min(na, nb) / len(y))
    if not rows:
        raise ValueError("No rate can be compared: every group is missing the examples the constraint needs.")
    return np.vstack(rows), names, np.asarray(share)


def _rate_gaps(decisions: np.ndarray, y: np.ndarray, groups: np.ndarray, constraint: str) -> tuple[np.ndarray, list[str]]:
    """Signed rate differences ``r_a - r_b`` of K candidates' hard decisions: ``(R, K)`` and the R row names.

    ``decisions`` (K, n) of 0/1. DP: ``r`` = selection rate ``P(yhat=1 | A=a)``; EO: the rates within ``y = 0``
    (FPR) and ``y = 1`` (TPR). One row per pair of groups ``a < b`` present for that rate.
    """
    rows, names, _ = _rate_rows(y, groups, constraint)
    return rows @ np.asarray(decisions, np.float64).T, names


def _weighted_logreg(Z: torch.Tensor, z: torch.Tensor, w: torch.Tensor, l2: float,
                     init: torch.Tensor | None = None) -> torch.Tensor:
    """``argmin_beta sum_i w_i BCE(z_i, Z_i . beta[:-1] + beta[-1]) / sum_i w_i + l2 ||beta[:-1]||^2`` by L-BFGS.

    ``Z`` (n, D) standardised features, ``z`` (n,) targets in {0, 1}, ``w`` (n,) >= 0 weights; returns
    ``beta`` (D + 1,), the bias last. Convex, so full-batch L-BFGS reaches the optimum (warm-started by ``init``).
    """
    beta = (torch.zeros(Z.shape[1] + 1, device=Z.device) if init is None else init.clone()).requires_grad_(True)
    w = w / w.sum().clamp(min=1e-30)
    opt = torch.optim.LBFGS([beta], lr=1.0, max_iter=100, history_size=20, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-6, tolerance_change=1e-10)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (w * F.binary_cross_entropy_with_logits(Z @ beta[:-1] + beta[-1], z, reduction="none")).sum()
        loss = loss + l2 * beta[:-1].pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return beta.detach()


def lagrangian_costs(y: Sequence[int], groups: Sequence[int], mu: Sequence[float], *,
                     constraint: str = "eo") -> tuple[np.ndarray, np.ndarray]:
    """Each example's cost of a yes and of a no in the Lagrangian ``err(h) + sum_r mu_r D_r(h)``: ``(c1, c0)``, each (n,).

    ``c_i(1) = [y_i = 0] / n + sum_r mu_r A_ri`` and ``c_i(0) = [y_i = 1] / n`` (Agarwal et al. 2018, sec. 3), with
    ``D_r(h) = A_r . h`` the signed rate differences of :func:`_rate_gaps`, so that for any decisions ``h`` (n,) of 0/1
    ``sum_i h_i c_i(1) + (1 - h_i) c_i(0) = err(h) + mu . D(h)``. ``mu`` (R,): one multiplier per rate difference
    (R = 1 for DP, 2 for EO with two groups; more with more groups).
    """
    y, groups = np.asarray(y), np.asarray(groups)
    A, names, _ = _rate_rows(y, groups, _check_constraint(constraint))
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    if mu.shape != (len(A),):
        raise ValueError(f"mu has {mu.size} values but the constraint compares {len(A)} rates: {names}.")
    n = len(y)
    return (y == 0) / n + mu @ A, (y == 1) / n


def best_response_heads(X: np.ndarray, y: Sequence[int], groups: Sequence[int], *, constraint: str = "eo",
                        n_candidates: int = 81, C: float = 1.0, seed: int = 0, template: LinearHead | None = None,
                        device: str | None = None,
                        progress: bool = False) -> tuple[list[dict[str, torch.Tensor]], np.ndarray]:
    """Linear heads that minimise the Lagrangian of the *hard* rate constraints, one per multiplier vector.

    With decisions ``h(x) in {0, 1}`` and multipliers ``mu`` (one per signed rate difference ``D_r(h) = A_r . h``,
    see :func:`_rate_gaps`), the Lagrangian ``L(h, mu) = err(h) + sum_r mu_r D_r(h)`` is a sum over examples of the
    cost of the decision taken (Agarwal et al. 2018, *A reductions approach to fair classification*, ICML, sec. 3)::

        c_i(1) = [y_i = 0] / n + sum_r mu_r A_ri        c_i(0) = [y_i = 1] / n

    so its minimiser is a cost-sensitive classifier: label ``[c_i(1) < c_i(0)]`` with weight ``|c_i(1) - c_i(0)|``
    (Zadrozny, Langford & Abe 2003), here fitted by weighted logistic regression (the convex surrogate, L2 as in
    scikit-learn's ``LogisticRegression(C=C)``), exactly, by L-BFGS. Unlike the surrogate of
    :class:`LagrangianConstraint` this charges the real rates: only which side of the boundary a person lands on
    counts. fairlearn's ExponentiatedGradient and GridSearch make the same reduction; here the heads become
    candidates for :func:`best_mixture`.

    Multipliers: ``mu_r = nu_r s_r`` with ``s_r`` the smaller cell's share of the data (:func:`_rate_rows`), so that
    ``nu_r = +-1`` moves that cell's cost of a yes by ``+-1/n``, as much as a mistake costs (at ``nu_r = -1`` its
    negatives cost nothing either way); ``nu`` runs over a grid on ``[-1, 1]^R`` with
    ``round(n_candidates ** (1 / R))`` points per axis (at least 3), or, when that grid would exceed
    ``n_candidates`` (many groups), over ``n_candidates`` points drawn uniformly (seeded). Each fit starts from the
    previous one. Returns the heads as :class:`LinearHead` state dicts (standardised like ``template``, default: the
    mean and sd of ``X``) and ``nu`` (K, R).
    """
    from tqdm.auto import tqdm

    from ..config import get_device

    _check_constraint(constraint)
    X, y, groups = check.labelled_features(X, y, groups, min_groups=2)
    if n_candidates < 1 or not C > 0:
        raise ValueError(f"n_candidates must be >= 1 and C > 0, got {n_candidates} and {C}.")
    A, _, share = _rate_rows(y, groups, constraint)
    R, n = A.shape
    per_axis = round(n_candidates ** (1.0 / R))
    if per_axis >= 3:
        axis = np.linspace(-1.0, 1.0, per_axis)
        nu = np.stack(np.meshgrid(*[axis] * R, indexing="ij"), -1).reshape(-1, R)
    else:
        nu = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n_candidates, R))
    if template is None:
        template = LinearHead.for_features(X)
    dev = get_device(device)
    mean, sd = template.mean.detach().cpu(), template.std.detach().cpu()
    Z = ((torch.as_tensor(X) - mean) / sd).to(dev)
    states, beta = [], None
    for v in tqdm(nu, desc="best responses", disable=not progress, leave=False):
        cost1, cost0 = lagrangian_costs(y, groups, v * share, constraint=constraint)
        target = torch.as_tensor(cost1 < cost0, dtype=torch.float32, device=dev)
        weight = torch.as_tensor(np.abs(cost1 - cost0), dtype=torch.float32, device=dev)
        beta = _weighted_logreg(Z, target, weight, 1.0 / (2.0 * C * n), init=beta)
        states.append({"mean": mean.clone(), "std": sd.clone(), "linear.weight": beta[:-1].cpu()[None],
                       "linear.bias": beta[-1:].cpu()})
    return states, nu


def best_mixture(errors: np.ndarray, gaps: np.ndarray, delta: float) -> tuple[np.ndarray, float]:
    """The distribution ``p`` over K candidates with the least expected error whose expected gaps are within delta.

    Linear program (Cotter, Jiang & Sridharan 2019, *Two-player games for efficient non-convex constrained
    optimization*, ALT; the same two steps as TF Constrained Optimization's ``find_best_candidate_distribution``)::

        1.  s* = min_{p in simplex, s >= 0}  s     s.t.  -delta - s <= sum_k p_k g_{r,k} <= delta + s  for every row r
        2.  min_{p in simplex}  sum_k p_k err_k   s.t.  the same constraints with s = s*

    ``errors`` (K,) error rates, ``gaps`` (R, K) signed rate differences of each candidate; rates of a mixture are
    the p-weighted rates of its members, so both steps are linear. A vertex solution (dual simplex) puts weight on
    at most ``R + 1`` candidates. Returns ``(p, s*)``; ``s* = 0`` when the tolerance can be met.
    """
    from scipy.optimize import linprog

    errors, gaps = np.asarray(errors, float), np.atleast_2d(np.asarray(gaps, float))
    k = len(errors)
    if gaps.shape[1] != k:
        raise ValueError(f"gaps has {gaps.shape[1]} columns but there are {k} candidates.")
    if not (np.isfinite(errors).all() and np.isfinite(gaps).all()):
        raise ValueError("errors and gaps must be finite.")
    if delta < 0:
        raise ValueError(f"delta (the allowed gap) must be >= 0, got {delta}.")
    r = len(gaps)
    a_ub = np.block([[gaps, -np.ones((r, 1))], [-gaps, -np.ones((r, 1))]])
    b_ub = np.full(2 * r, float(delta))
    a_eq, b_eq = np.r_[np.ones(k), 0.0][None], [1.0]
    first = linprog(np.r_[np.zeros(k), 1.0], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, method="highs-ds")
    if not first.success:  # cannot happen (s large is always feasible), but say so if scipy disagrees
        raise ValueError(f"The mixing linear program failed: {first.message}")
    slack = float(max(first.x[-1], 0.0))
    bounds = [(0, None)] * k + [(0, slack + 1e-9)]
    second = linprog(np.r_[errors, 0.0], A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs-ds")
    if not second.success:
        raise ValueError(f"The mixing linear program failed: {second.message}")
    p = np.clip(second.x[:k], 0.0, None)
    p[p < 1e-6] = 0.0
    return p / p.sum(), slack


class MixtureHead(torch.nn.Module):
    """K linear heads that share one standardisation; ``forward`` gives the log-odds of the mixture's decision.

    The randomised classifier picks head k with probability ``w_k`` and uses its decision ``z_k(x) > 0``, so it says
    yes with probability ``q(x) = sum_k w_k [z_k(x) > 0]``; ``forward`` returns ``log(q / (1 - q))`` (clipped to
    +-20), so ``sigmoid`` of it is ``q``. Sample from ``q``; thresholding it at 1/2 gives a different, deterministic
    classifier. Shapes: ``(B, D) -> (B,)``.
    """

    def __init__(self, template: LinearHead, states: Sequence[dict[str, torch.Tensor]], weights: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", template.mean.detach().cpu().clone())
        self.register_buffer("std", template.std.detach().cpu().clone())
        fixed = lambda t: torch.nn.Parameter(t, requires_grad=False)  # noqa: E731 - parameters, so .to() moves them
        self.weight = fixed(torch.stack([s["linear.weight"][0].float().cpu() for s in states]))  # (K, D)
        self.bias = fixed(torch.stack([s["linear.bias"][0].float().cpu() for s in states]))  # (K,)
        self.mix = fixed(torch.as_tensor(np.asarray(weights), dtype=torch.float32))  # (K,)

    def decisions(self, x: torch.Tensor) -> torch.Tensor:
        """Every member's decision ``[z_k(x) > 0]``: ``(B, D) -> (B, K)`` of 0/1."""
        return ((((x - self.mean) / self.std) @ self.weight.T + self.bias) > 0).to(self.mix.dtype)

    def decisions_for(self, X: np.ndarray, *, batch_size: int = 8192) -> torch.Tensor:
        """:meth:`decisions` for an array ``X`` (n, D), in batches on the module's device: ``(n, K)`` there."""
        X = check.features(X, "X", n_features=self.weight.shape[1])
        dev = self.mix.device
        with torch.no_grad():
            parts = [self.decisions(torch.as_tensor(X[i:i + batch_size], device=dev))
                     for i in range(0, len(X), batch_size)]
        return torch.cat(parts) if parts else torch.zeros(0, len(self.mix), device=dev)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self.decisions(x) @ self.mix
        return torch.logit(q.clamp(0.0, 1.0), eps=2e-9).clamp(-20.0, 20.0)


@dataclass
class RandomizedHeadResult:
    """What :func:`mix_iterates` returns: the mixture, its members and what it promised on the fitting data."""

    model: MixtureHead
    weights: np.ndarray  # (K_support,) the probabilities of the heads kept
    support: list[int]  # their rows in candidates (epochs 0..E-1, E = the averaged head, then any best responses)
    candidates: pd.DataFrame  # per candidate: error and each signed gap on the fitting data
    fit_gap: float  # max |expected gap| of the mixture on the fitting data
    slack: float  # how far the tolerance had to be relaxed (0 when it was met on the fitting data)
    head: FairHeadResult  # the constrained run whose iterates were mixed
    seconds: float = 0.0

    @property
    def hook(self) -> Any:
        return self.head.hook

    def decision_probability(self, X: np.ndarray) -> np.ndarray:
        """``q(x) = sum_k w_k [z_k(x) > 0]``, the probability that the randomised classifier says 1, shape (n,);
        exactly 0 or 1 where every member agrees."""
        return (self.model.decisions_for(X) @ self.model.mix).double().cpu().numpy()

    def predict(self, X: np.ndarray, random_state: int = 0) -> np.ndarray:
        """Sampled decisions ``yhat ~ Bernoulli(q(x))``, seeded (like fairlearn's ``predict(..., random_state=)``)."""
        q = self.decision_probability(X)
        return (np.random.default_rng(random_state).random(len(q)) < q).astype(np.int64)


def mix_iterates(head: FairHeadResult, X: np.ndarray, y: Sequence[int], groups: Sequence[int], *,
                 constraint: str = "eo", delta: float = 0.02, best_responses: int = 0,
                 progress: bool = False) -> RandomizedHeadResult:
    """Turn a constrained run into the best randomised classifier over its iterates (Cotter et al. 2019).

    Descent-ascent does not converge to one good classifier: theta and lambda circle around the constrained optimum,
    and its guarantee is for a *distribution* over the iterates. Candidates: the head averaged over each epoch
    (``train_fair_head(keep_iterates=True)``), the final averaged head and, with ``best_responses=K``, the K heads of
    :func:`best_response_heads` (the Lagrangian's minimisers at a grid of multipliers, which charge the real rates
    instead of the surrogate). Their hard decisions on ``X`` (n, d) give each candidate's error and signed rate gaps,
    and :func:`best_mixture` picks the distribution with the least expected error whose expected gaps are within
    ``delta`` (at most R + 1 heads, R = number of rate differences: 1 for DP, 2 for EO with two groups). More
    candidates can only lower the error on ``X``. A mixture can meet equalized odds where every single linear head
    misses it: one head may be ahead on TPR and another on FPR. The price: two identical people can get different
    decisions.
    """
    t0 = time.perf_counter()
    _check_constraint(constraint)
    if not head.iterates:
        raise ValueError("This run kept no iterates: train it with train_fair_head(..., keep_iterates=True).")
    X, y, groups = check.labelled_features(X, y, groups, min_groups=2)
    final = {k: v.detach().cpu() for k, v in head.model.state_dict().items()}
    states = [*head.iterates, final]
    labels = [f"epoch {e}" for e in range(len(head.iterates))] + ["averaged"]
    template = head.model
    if best_responses:
        extra, nu = best_response_heads(X, y, groups, constraint=constraint, n_candidates=best_responses,
                                        template=template, device=str(next(template.buffers()).device),
                                        progress=progress)
        states += extra
        labels += ["best response nu=(" + ", ".join(f"{v:+.2f}" for v in row) + ")" for row in nu]
    members = MixtureHead(template, states, np.full(len(states), 1.0 / len(states)))
    decisions = members.decisions_for(X).numpy().T.astype(np.float64)  # (K, n)
    errors = (decisions != y[None]).mean(1)
    gaps, names = _rate_gaps(decisions, y, groups, constraint)
    p, slack = best_mixture(errors, gaps, delta)
    support = [int(i) for i in np.flatnonzero(p)]
    cands = pd.DataFrame({"candidate": labels, "error": errors, **{n: g for n, g in zip(names, gaps)}, "weight": p})
    model = MixtureHead(template, [states[i] for i in support], p[support]).eval()
    return RandomizedHeadResult(model, p[support], support, cands, float(np.abs(gaps @ p).max()), slack, head,
                                time.perf_counter() - t0 + head.seconds)
