"""DP-SGD accounting against opacus, one clipping step by hand, and the membership-advantage bound (helpers.dp)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import dp


@pytest.mark.parametrize("q,sigma,steps", [(0.01, 1.1, 1000), (64 / 1500, 2.0, 700), (0.2, 5.0, 150), (1.0, 3.0, 10)])
def test_epsilon_matches_opacus_rdp_on_the_same_orders(q, sigma, steps):
    from opacus.accountants.analysis import rdp

    orders = list(range(2, 65))
    ref_rdp = rdp.compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders)
    ref_eps, _ = rdp.get_privacy_spent(orders=orders, rdp=ref_rdp, delta=1e-5)
    assert np.allclose(steps * dp.rdp_sampled_gaussian(q, sigma, orders), ref_rdp, rtol=1e-9)
    assert dp.dp_sgd_epsilon(sigma, q, steps, 1e-5, orders) == pytest.approx(ref_eps, rel=1e-9)


def test_epsilon_against_the_accountant_with_its_own_orders():
    """opacus's RDPAccountant also uses fractional orders: our integer-order epsilon can only be a little larger."""
    from opacus.accountants import RDPAccountant

    acc = RDPAccountant()
    q, sigma, steps, delta = 64 / 1500, 1.3, 24 * 30, 1 / 1500
    for _ in range(steps):
        acc.step(noise_multiplier=sigma, sample_rate=q)
    theirs = acc.get_epsilon(delta)
    ours = dp.dp_sgd_epsilon(sigma, q, steps, delta)
    assert theirs <= ours + 1e-9 and ours <= 1.03 * theirs


def test_noise_multiplier_from_opacus_reaches_the_target_in_our_accounting():
    """get_noise_multiplier searches sigma until opacus's epsilon is within 0.01 below the target; ours, without
    the fractional orders, lands at most a few percent above it (most at large epsilon, where small orders win)."""
    from opacus.accountants.utils import get_noise_multiplier

    for target in (8.0, 3.0, 1.0):
        sigma = get_noise_multiplier(target_epsilon=target, target_delta=1 / 1500, sample_rate=64 / 1500, epochs=30)
        ours = dp.dp_sgd_epsilon(sigma, 64 / 1500, int(30 * 1500 / 64), 1 / 1500)
        assert target - 0.02 <= ours <= target * 1.06


def test_plain_gaussian_rdp_is_alpha_over_two_sigma_squared():
    """q = 1: the Gaussian mechanism with sensitivity 1 has RDP alpha / (2 sigma^2) (Mironov 2017, Prop. 7)."""
    orders = [2, 3, 10, 64]
    assert np.allclose(dp.rdp_sampled_gaussian(1.0, 2.5, orders), np.array(orders) / (2 * 2.5**2), rtol=1e-12)


def test_advantage_bound_is_the_corner_of_the_dp_tradeoff_region():
    """Max over FPR of TPR - FPR with TPR <= min(1, e^eps FPR + delta, 1 - e^-eps (1 - delta - FPR)), on a grid."""
    fpr = np.linspace(0, 1, 200001)
    for eps, delta in [(0.5, 0.0), (1.0, 1e-3), (3.0, 1 / 1500), (8.0, 1e-5)]:
        tpr = np.minimum.reduce([np.ones_like(fpr), np.exp(eps) * fpr + delta,
                                 1 - np.exp(-eps) * (1 - delta - fpr)])  # fmt: skip
        assert dp.advantage_bound(eps, delta) == pytest.approx((tpr - fpr).max(), abs=1e-4)
    assert dp.advantage_bound(2.0, 0.0) == pytest.approx(math.tanh(1.0))
    assert dp.advantage_bound(math.inf, 1e-5) == 1.0


def test_one_dp_sgd_step_by_hand():
    """noise_multiplier = 0: the update is the mean of per-example gradients, each clipped to norm C."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    torch.manual_seed(0)
    X = torch.randn(4, 3) * torch.tensor([[5.0], [0.1], [2.0], [0.5]])  # a mix of large and small gradients
    y = torch.tensor([1.0, 0.0, 1.0, 0.0])
    base = torch.nn.Linear(3, 1)
    w0 = [p.detach().clone() for p in base.parameters()]
    C, lr = 0.5, 0.1

    # by hand: per-example gradients with autograd, one example at a time
    clipped = []
    for i in range(4):
        net = torch.nn.Linear(3, 1)
        with torch.no_grad():
            for p, v in zip(net.parameters(), w0):
                p.copy_(v)
        torch.nn.functional.binary_cross_entropy_with_logits(net(X[i : i + 1]).reshape(-1), y[i : i + 1]).backward()
        g = [p.grad.clone() for p in net.parameters()]
        norm = torch.sqrt(sum((t**2).sum() for t in g))
        clipped.append([t * min(1.0, C / float(norm)) for t in g])
    hand = [w - lr * sum(c[j] for c in clipped) / 4 for j, w in enumerate(w0)]
    assert any(float(torch.sqrt(sum((t**2).sum() for t in c))) < C - 1e-6 for c in clipped)  # some left unclipped

    model = GradSampleModule(base)
    opt = DPOptimizer(torch.optim.SGD(model.parameters(), lr=lr), noise_multiplier=0.0, max_grad_norm=C,
                      expected_batch_size=4)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(X).reshape(-1), y)
    loss.backward()
    opt.step()
    for p, h in zip(base.parameters(), hand):
        assert torch.allclose(p.detach(), h, atol=1e-6)


def test_train_dp_head_reports_matching_epsilons_and_learns():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    y = (X[:, 0] + 0.3 * rng.normal(size=300) > 0).astype(int)
    head = dp.train_dp_head(X, y, epsilon=3.0, delta=1 / 300, epochs=5, batch_size=30, lr=0.05, seed=0)
    assert head.epsilon_opacus == pytest.approx(3.0, rel=0.03)
    assert head.epsilon_opacus <= head.epsilon_ours <= 1.06 * head.epsilon_opacus  # ours: integer orders only
    from helpers.training import predict_head

    assert ((predict_head(head.model, X) >= 0.5) == y).mean() > 0.8
    plain = dp.train_dp_head(X, y, epsilon=math.inf, delta=1 / 300, epochs=5, batch_size=30, lr=0.05, seed=0)
    assert plain.noise_multiplier == 0 and math.isinf(plain.epsilon_ours)


def test_readable_errors():
    with pytest.raises(ValueError, match="sampling rate"):
        dp.rdp_sampled_gaussian(0.0, 1.0)
    with pytest.raises(ValueError, match="delta"):
        dp.epsilon_from_rdp([1.0], [2], 0.0)
    with pytest.raises(ValueError, match="epsilon"):
        dp.train_dp_head(np.zeros((4, 2)), [0, 1, 0, 1], epsilon=0.0, delta=0.1)


def test_dp_sgd_on_lora_trains_only_adapters_and_head_with_matching_epsilons():
    from helpers.models import load_classifier, load_tokenizer
    from helpers.training import predict_proba

    texts = [f"A {a}-year-old person works {h} hours a week." for a, h in zip(range(20, 36), range(30, 46))]
    y = [int(i % 2 == 0) for i in range(len(texts))]
    head = dp.train_dp_lora(texts, y, epsilon=8.0, delta=1 / 16, r=2, epochs=2, batch_size=8, lr=1e-2,
                            max_length=24, seed=0)
    assert head.epsilon_opacus == pytest.approx(8.0, rel=0.03)
    assert head.epsilon_ours >= head.epsilon_opacus  # ours: integer orders only (few steps at q = 1/2: far above)
    base = dict(load_classifier(device="cpu", seed=0).named_parameters())
    moved_adapters, moved_frozen = 0, 0
    for name, p in head.model.named_parameters():
        if "lora_B" in name or "modules_to_save" in name:
            moved_adapters += int(p.detach().abs().sum() > 0)  # B and the head start at zero
        elif "lora_" not in name and "original_module" not in name:
            key = name.replace("base_model.model.", "").replace(".base_layer", "")
            moved_frozen += int(key in base and not torch.equal(p.detach(), base[key]))
    assert moved_adapters >= 2 * 6 and moved_frozen == 0  # 6 layers x (query, value)
    p = predict_proba(head.model, load_tokenizer(), texts[:3])
    assert p.shape == (3, 2) and np.allclose(p.sum(1), 1)


def test_default_delta_is_well_below_one_over_n_and_sweep_refuses_one_over_n():
    assert dp.default_delta(1500) == pytest.approx(1 / 15000)
    X, y = np.zeros((20, 3), np.float32), np.r_[np.zeros(10), np.ones(10)]
    with pytest.raises(ValueError, match="1/n"):
        dp.dp_sweep(X, y, X, y, ["a"] * 20, delta=1 / 20)
    with pytest.raises(ValueError, match="positive integer"):
        dp.default_delta(0)


def test_sweep_plot_labels_the_delta_the_sweep_used():
    """The x axis says delta = 1/(10n) and its value (1/(10 * 40) = 2.5e-03), not 1/n; a custom delta is printed."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)).astype(np.float32), np.r_[np.zeros(20), np.ones(20)]
    table, _ = dp.dp_sweep(X, y, X, y, ["a", "b"] * 20, epsilons=(8,), hidden=0, epochs=1, batch_size=8)
    fig = dp.plot_dp_sweep(table)
    assert [ax.get_xlabel() for ax in fig.axes] == ["target ε (δ = 1/(10n) = 2.5e-03)"] * 2
    plt.close(fig)
    table.attrs["delta"] = 1e-3
    fig = dp.plot_dp_sweep(table)
    assert fig.axes[0].get_xlabel() == "target ε (δ = 1.0e-03)"
    plt.close(fig)
