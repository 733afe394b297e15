"""Differentially private training (DP-SGD) with opacus, and its privacy accounting.

**DP-SGD** (Abadi et al. 2016, *Deep learning with differential privacy*, CCS, Algorithm 1): every step draws a
batch by Poisson sampling (each record joins with probability :math:`q = B/n`), clips each example's gradient to
norm :math:`C`, sums, adds Gaussian noise and averages over the expected batch size:

.. math:: \\tilde g = \\frac{1}{B}\\Big(\\sum_{i \\in \\text{batch}} g_i \\min\\big(1, C/\\lVert g_i\\rVert_2\\big)
          + \\mathcal N(0, \\sigma^2 C^2 I)\\Big).

``opacus`` (``PrivacyEngine``) implements it for PyTorch; :func:`train_dp_head` uses it on the heads of
:mod:`helpers.training`.

**Accounting** (hand-written here, checked against opacus's ``RDPAccountant``): one step is the sampled Gaussian
mechanism, whose Renyi DP at integer order :math:`\\alpha \\ge 2` is (Mironov, Talwar & Zhang 2019, *Renyi
differential privacy of the sampled Gaussian mechanism*, section 3.3)

.. math:: \\varepsilon_\\alpha = \\frac{1}{\\alpha - 1}\\log \\sum_{k=0}^{\\alpha} \\binom{\\alpha}{k}
          (1-q)^{\\alpha-k} q^k \\exp\\Big(\\frac{k^2 - k}{2\\sigma^2}\\Big);

RDP composes by addition over :math:`T` steps, and converts to :math:`(\\varepsilon, \\delta)`-DP by (Balle et al.
2020, *Hypothesis testing interpretations and Renyi differential privacy*, AISTATS, Theorem 21)

.. math:: \\varepsilon = \\min_\\alpha\\; T\\varepsilon_\\alpha + \\log\\frac{\\alpha - 1}{\\alpha}
          - \\frac{\\log\\delta + \\log\\alpha}{\\alpha - 1}.

**What it buys against membership inference**: under :math:`(\\varepsilon, \\delta)`-DP any attack's
TPR and FPR satisfy :math:`TPR \\le e^\\varepsilon FPR + \\delta` and :math:`1 - FPR \\le e^\\varepsilon (1 - TPR)
+ \\delta` (Kairouz, Oh & Viswanath 2015, *The composition theorem for differential privacy*, ICML), so the
membership advantage :math:`TPR - FPR \\le (e^\\varepsilon - 1 + 2\\delta)/(e^\\varepsilon + 1)`
(:func:`advantage_bound`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: Integer Renyi orders of our accountant (opacus adds fractional ones, so its epsilon can be a little lower).
ORDERS: tuple[int, ...] = tuple(range(2, 257))
#: Orders handed to opacus's RDP accountant: its default fractional ones (1.1 ... 10.9) and the integers up to 256
#: (its default stops at 63, too low for small sample rates and delta = 1/(10 n): the optimum would sit at the end).
OPACUS_ALPHAS: tuple[float, ...] = tuple(1 + x / 10.0 for x in range(1, 100)) + tuple(range(12, 257))


def _check_rate(q: float, sigma: float) -> None:
    if not 0 < q <= 1:
        raise ValueError(f"The sampling rate q must be in (0, 1], got {q}.")
    if not sigma > 0:
        raise ValueError(f"The noise multiplier must be positive, got {sigma}.")


def rdp_sampled_gaussian(q: float, sigma: float, orders: Sequence[int] = ORDERS) -> np.ndarray:
    """Renyi DP :math:`\\varepsilon_\\alpha` of ONE step of the Poisson-sampled Gaussian mechanism, per order.

    Integer orders only (the closed form above, summed in log space). ``q = 1`` gives the plain Gaussian
    mechanism, :math:`\\alpha / (2\\sigma^2)`. Shape ``(len(orders),)``.
    """
    _check_rate(q, sigma)
    out = []
    for a in orders:
        if int(a) != a or a < 2:
            raise ValueError(f"Orders must be integers >= 2, got {a}.")
        a = int(a)
        if q == 1:
            out.append(a / (2 * sigma**2))
            continue
        k = np.arange(a + 1)
        log_binom = math.lgamma(a + 1) - np.array([math.lgamma(i + 1) + math.lgamma(a - i + 1) for i in k])
        terms = log_binom + k * np.log(q) + (a - k) * np.log1p(-q) + (k * k - k) / (2 * sigma**2)
        top = terms.max()
        out.append((top + np.log(np.exp(terms - top).sum())) / (a - 1))
    return np.array(out)


def epsilon_from_rdp(rdp: Sequence[float], orders: Sequence[int], delta: float) -> float:
    """:math:`(\\varepsilon, \\delta)` from total RDP per order (Balle et al. 2020, Theorem 21), minimised over orders."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}.")
    a = np.asarray(orders, dtype=float)
    eps = np.asarray(rdp, dtype=float) + np.log((a - 1) / a) - (np.log(delta) + np.log(a)) / (a - 1)
    return float(np.min(eps))


def dp_sgd_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                   orders: Sequence[int] = ORDERS) -> float:
    """Epsilon spent by ``steps`` DP-SGD steps at ``sample_rate`` q and ``noise_multiplier`` sigma; inf for sigma = 0."""
    if noise_multiplier == 0:
        return math.inf
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}.")
    return epsilon_from_rdp(steps * rdp_sampled_gaussian(sample_rate, noise_multiplier, orders), orders, delta)


def advantage_bound(epsilon: float, delta: float) -> float:
    """Tightest membership advantage (TPR - FPR) any attack can reach against an (epsilon, delta)-DP training:
    :func:`helpers.privacy.dp_advantage_bound` (1 for epsilon = inf)."""
    from .privacy import dp_advantage_bound

    return float(dp_advantage_bound(epsilon, delta))


@dataclass
class DPHead:
    """A head trained by :func:`train_dp_head`: the model (eval mode), the noise multiplier used, the epsilon
    opacus's accountant reports and ours (:func:`dp_sgd_epsilon`), the steps and sample rate, and per-epoch
    training loss."""

    model: object
    noise_multiplier: float
    epsilon_opacus: float
    epsilon_ours: float
    steps: int
    sample_rate: float
    history: list = field(default_factory=list)


def train_dp_head(X, y, *, epsilon: float, delta: float, hidden: int = 0, epochs: int = 30, batch_size: int = 64,
                  lr: float = 1e-3, max_grad_norm: float = 1.0, seed: int = 0) -> DPHead:
    """Train :class:`helpers.training.Head` on features ``X`` ``(n, d)`` and 0/1 labels ``y`` with DP-SGD (Adam
    update on the privatised gradient) to a target ``epsilon`` at ``delta``.

    opacus picks the noise multiplier (``get_noise_multiplier``, RDP accountant) for ``epochs`` passes at sample
    rate ``batch_size / n`` with Poisson sampling. ``epsilon = inf`` trains the same model, optimiser, batches and
    epochs with neither clipping nor noise (the non-private reference).
    """
    import torch

    from . import validation as check
    from .config import seeded
    from .training import Head

    X = check.features(X, "X")
    yv = check.binary_labels(y, "y", n=len(X))
    with seeded(seed):
        model = Head.build(X.shape[1], hidden)
    return _dp_fit(model, [torch.as_tensor(X)], yv, lambda m, x: m(x), epsilon=epsilon, delta=delta, epochs=epochs,
                   batch_size=batch_size, lr=lr, max_grad_norm=max_grad_norm, seed=seed)


def train_dp_lora(texts, y, *, epsilon: float, delta: float, r: int = 8, epochs: int = 2, batch_size: int = 64,
                  lr: float = 1e-3, max_grad_norm: float = 1.0, max_length: int = 128, seed: int = 0) -> DPHead:
    """DP-SGD on the LoRA parameters (and head) of MiniLM: the same loop as :func:`train_dp_head`, on texts.

    The classifier (:func:`helpers.models.load_classifier`) gets rank-``r`` adapters (:func:`helpers.lora.add_lora`,
    alpha = 2r); only the adapters and the head are trained, with per-example clipping and noise (opacus computes
    the per-example gradients of the adapters' ``Linear`` layers). The head starts at zero, so no statistic of the
    private data enters the model outside DP-SGD. The model's logit of y = 1 is ``logits[:, 1] - logits[:, 0]``.
    Returns a :class:`DPHead` whose ``model`` takes ``input_ids, attention_mask`` (use
    :func:`helpers.training.predict_proba` with :func:`helpers.models.load_tokenizer`).
    """
    import torch

    from . import lora
    from . import validation as check
    from .config import seeded
    from .models import load_classifier, load_tokenizer
    from .training import pretokenize

    texts = check.texts(texts, "texts")
    yv = check.binary_labels(y, "y", n=len(texts))
    tok = pretokenize(texts, load_tokenizer(), max_length=max_length, device="cpu")
    mask = (torch.arange(tok.ids.shape[1])[None, :] < tok.lengths[:, None]).long()
    with seeded(seed):
        model = load_classifier(device="cpu", seed=None)
        torch.nn.init.zeros_(model.classifier.weight)
        torch.nn.init.zeros_(model.classifier.bias)
        model = lora.add_lora(model, r=r, alpha=2 * r)

    def logit(m, ids, att):
        z = m(input_ids=ids, attention_mask=att).logits.float()
        return z[:, 1] - z[:, 0]

    return _dp_fit(model, [tok.ids, mask], yv, logit, epsilon=epsilon, delta=delta, epochs=epochs,
                   batch_size=batch_size, lr=lr, max_grad_norm=max_grad_norm, seed=seed)


def _dp_fit(model, inputs: list, y: np.ndarray, logit, *, epsilon: float, delta: float, epochs: int, batch_size: int,
            lr: float, max_grad_norm: float, seed: int) -> DPHead:
    """The DP-SGD loop shared by :func:`train_dp_head` and :func:`train_dp_lora`: ``logit(model, *batch_inputs)``
    gives the ``(B,)`` logits of y = 1; binary cross-entropy; Adam on the privatised gradient of the parameters that
    require gradients. ``epsilon = inf``: same loop without clipping or noise."""
    import warnings

    import torch
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier
    from torch.utils.data import DataLoader, TensorDataset

    from .config import seeded

    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive (or inf), got {epsilon}.")
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    loader = DataLoader(TensorDataset(*inputs, torch.as_tensor(y, dtype=torch.float32)),
                        batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(seed))
    q = min(1.0, batch_size / len(y))
    sigma, engine = 0.0, None
    with warnings.catch_warnings(), seeded(seed):  # opacus's notes on its non-cryptographic RNG and on hooks
        warnings.filterwarnings("ignore", message=".*(Secure RNG|Full backward hook).*")
        if not math.isinf(epsilon):
            sigma = get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=q, epochs=epochs,
                                         accountant="rdp", alphas=list(OPACUS_ALPHAS))
            engine = PrivacyEngine(accountant="rdp", secure_mode=False)
            model, opt, loader = engine.make_private(module=model, optimizer=opt, data_loader=loader,
                                                     noise_multiplier=sigma, max_grad_norm=max_grad_norm,
                                                     noise_generator=torch.Generator().manual_seed(seed))
        bce = torch.nn.BCEWithLogitsLoss()
        history, steps = [], 0
        for epoch in range(1, epochs + 1):
            model.train()
            total, count = 0.0, 0
            for *xb, yb in loader:
                if len(yb) == 0:  # Poisson sampling drew nobody (probability (1 - q)^n): skip the step
                    continue
                opt.zero_grad(set_to_none=True)
                loss = bce(logit(model, *xb), yb)
                loss.backward()
                opt.step()
                steps += 1
                total, count = total + float(loss.detach()) * len(yb), count + len(yb)
            history.append({"epoch": epoch, "train_loss": total / max(count, 1)})
    net = model._module if engine is not None else model
    eps_opacus = engine.accountant.get_epsilon(delta, alphas=list(OPACUS_ALPHAS)) if engine is not None else math.inf
    return DPHead(net.eval(), sigma, float(eps_opacus), dp_sgd_epsilon(sigma, q, steps, delta), steps, q, history)


def default_delta(n: int) -> float:
    """The workbook's delta for a training set of ``n`` records: ``1 / (10 n)``, below ``1 / n``.

    An (epsilon, delta)-DP mechanism may publish a random record in full with probability delta per record;
    at delta = 1/n it may publish about one whole record of the n (Dwork & Roth 2014, *The Algorithmic
    Foundations of Differential Privacy*, Sec. 2.3, after Def. 2.4: delta of order 1/n is "very dangerous";
    they ask for delta smaller than any inverse polynomial in n). ``1 / (10 n)`` is a common practical choice, not
    a cryptographically small delta: such a mechanism still publishes some whole record with probability
    ``1 - (1 - delta)^n``, about ``1 - e^(-0.1)`` (10 %).
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n is a number of training records (a positive integer), got {n!r}.")
    return 1.0 / (10 * int(n))


def dp_sweep(X_train, y_train, X_test, y_test, groups_test, *, epsilons: Sequence[float] = (math.inf, 8, 3, 1),
             n_attack: int | None = None, seed: int = 0, lora_rank: int | None = None, delta: float | None = None,
             **train_kwargs):
    """One DP model per epsilon at ``delta`` (default :func:`default_delta`, 1/(10 n)): test accuracy, accuracy per group, the loss-threshold membership
    attack (first ``n_attack`` training rows vs as many test rows; :func:`helpers.privacy.loss_threshold_attack`)
    and :func:`advantage_bound`. ``lora_rank=None``: ``X_*`` are features and each model is a
    :func:`train_dp_head`; an integer: ``X_*`` are texts and each model is a :func:`train_dp_lora` of that rank.
    Returns ``(table, models)`` - a DataFrame with one row per epsilon (empty for no epsilons), and the models."""
    import pandas as pd

    from .privacy import loss_threshold_attack
    from .progress import tqdm
    from .training import predict_head, predict_proba

    if lora_rank is None:
        def fit(eps, delta):
            return train_dp_head(X_train, y_train, epsilon=eps, delta=delta, seed=seed, **train_kwargs)

        def predict(model, X):
            return predict_head(model, X)
    else:
        from .models import load_tokenizer

        def fit(eps, delta):
            return train_dp_lora(X_train, y_train, epsilon=eps, delta=delta, r=lora_rank, seed=seed, **train_kwargs)

        def predict(model, texts):
            return predict_proba(model, load_tokenizer(), texts)[:, 1]

    n = len(X_train)
    if delta is None:  # no training rows: only an empty sweep (no epsilons) makes sense
        delta = default_delta(n) if n else math.nan
    if n and not 0 < delta < 1.0 / n:
        raise ValueError(f"delta must be in (0, 1/n) = (0, {1.0 / n:.2g}) for n = {n} training rows, got {delta!r}.")
    m = min(n_attack or n, n, len(X_test))
    groups_test = np.asarray(groups_test, dtype=object)
    y_test = np.asarray(y_test)
    rows, heads = [], {}
    for eps in tqdm(epsilons, desc="DP-SGD", leave=False, disable=not len(epsilons)):
        head = heads[eps] = fit(eps, delta)
        p = predict(head.model, X_test)
        correct = (p >= 0.5).astype(int) == y_test
        mia = loss_threshold_attack(predict(head.model, X_train[:m]), np.asarray(y_train)[:m], p[:m], y_test[:m])
        rows.append({"target_epsilon": eps, "noise_multiplier": head.noise_multiplier,
                     "epsilon_opacus": head.epsilon_opacus, "epsilon_ours": head.epsilon_ours,
                     "accuracy": float(correct.mean()),
                     **{f"accuracy.{g}": float(correct[groups_test == g].mean()) for g in sorted(set(groups_test))},
                     "mia_auc": mia["auc"], "mia_best_advantage": mia["best_advantage"],
                     "advantage_bound": advantage_bound(eps, delta)})  # fmt: skip
    table = pd.DataFrame(rows, columns=["target_epsilon", "noise_multiplier", "epsilon_opacus", "epsilon_ours",
                                        "accuracy", "mia_auc", "mia_best_advantage", "advantage_bound"]
                         if not rows else None)
    table = table.set_index("target_epsilon")
    table.attrs.update(delta=delta, n=n)  # for the plot's axis label
    return table, heads


def plot_dp_sweep(table, *, title: str = "DP-SGD: what each epsilon costs and buys"):
    """Two panels from a :func:`dp_sweep` table: accuracy (overall and per group) and the membership attack's best
    advantage next to :func:`advantage_bound`, against epsilon (inf drawn at the right, as "no DP"). The x label
    gives the sweep's delta (``table.attrs``)."""
    import matplotlib.pyplot as plt

    labels = ["no DP" if math.isinf(e) else f"{e:g}" for e in table.index]
    delta, n = table.attrs.get("delta"), table.attrs.get("n")
    xlabel = ("target ε" if delta is None or not np.isfinite(delta) else
              f"target ε (δ = 1/(10n) = {delta:.1e})" if n and delta == default_delta(n) else f"target ε (δ = {delta:.1e})")
    x = np.arange(len(table))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for col in [c for c in table.columns if c.startswith("accuracy")]:
        a1.plot(x, table[col], marker="o", label=col.replace("accuracy.", "") if "." in col else "all")
    a1.set(xticks=x, xticklabels=labels, xlabel=xlabel, ylabel="test accuracy", title="Accuracy")
    a1.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)  # never on a line
    a2.plot(x, table["mia_best_advantage"], marker="o", label="measured: loss-threshold attack, best TPR − FPR")
    a2.plot(x, table["advantage_bound"], marker="s", ls="--", label="bound (e^ε − 1 + 2δ)/(e^ε + 1)")
    a2.set(xticks=x, xticklabels=labels, xlabel=xlabel, ylabel="membership advantage", ylim=(0, 1.05),
           title="Membership inference")
    a2.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.suptitle(title)
    fig.tight_layout()
    return fig
