"""Self-checks for notebook 05 (L2, dropout, calibration, the broken "regulariser", early stopping)."""

from __future__ import annotations

import numpy as np
import torch

from . import NotAttempted, call, exercise, expect


@exercise("05.1", title="the L2 penalty",
          hint="Return 0.5 * lam * the sum over tensors of (t ** 2).sum(); keep it a torch expression so it has a gradient.")
def _l2(fn) -> None:
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 4, generator=gen, dtype=torch.float64, requires_grad=True),
              torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)]
    got = call(fn, params, 0.3)
    expect(torch.is_tensor(got) and got.numel() == 1, f"expected a scalar tensor, got {type(got).__name__}.")
    want = 0.15 * sum(float((p.detach() ** 2).sum()) for p in params)
    value = float(got.detach())
    expect(abs(value - want) < 1e-9, f"penalty {value:.6f}, expected (lam/2)*||theta||^2 = {want:.6f}.")
    expect(got.requires_grad, "the result has no gradient: compute it with torch operations on the parameters.")
    grads = torch.autograd.grad(got, params)
    expect(all(torch.allclose(g, 0.3 * p) for g, p in zip(grads, params)),
           "the gradient is not lam * theta: check the factor 1/2.")


@exercise("05.2", title="inverted dropout",
          hint="In training: mask = (torch.rand_like(x) >= p); return x * mask / (1 - p). In eval: return x unchanged.")
def _dropout(fn) -> None:
    x = torch.full((200_000,), 2.0)
    torch.manual_seed(0)
    out = call(fn, x, 0.25, True)
    expect(torch.is_tensor(out) and out.shape == x.shape, "return a tensor with the same shape as x.")
    zero = float((out == 0).float().mean())
    expect(abs(zero - 0.25) < 0.01, f"{zero:.3f} of the entries are zero; with p = 0.25 expect about 0.25.")
    expect(abs(float(out.mean()) - 2.0) < 0.02,
           f"the mean is {float(out.mean()):.3f}, not 2.0: scale the survivors by 1/(1-p) to keep the expectation.")
    kept = out[out != 0]
    expect(torch.allclose(kept, torch.full_like(kept, 2.0 / 0.75)), "survivors must be exactly x / (1 - p).")
    same = call(fn, x, 0.25, False)
    expect(torch.equal(same, x), "in eval mode (training=False) dropout must return x unchanged.")


@exercise("05.3", title="expected calibration error",
          hint="Bin P(y=1) into n_bins equal-width bins; ECE = sum over bins of (n_b/n) * |mean(y in b) - mean(p in b)|.")
def _ece(fn) -> None:
    from ..regularization import expected_calibration_error

    got = float(call(fn, np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.3]), 2))
    expect(abs(got - 0.175) < 1e-9, f"on the toy (y=[0,1,1,0], p=[.1,.9,.8,.3], 2 bins) you got {got}, expected 0.175.")
    rng = np.random.default_rng(0)
    p = rng.uniform(size=500)
    y = (rng.uniform(size=500) < p**2).astype(int)
    want = expected_calibration_error(y, p, 10)
    got = float(call(fn, y, p, 10))
    expect(abs(got - want) < 1e-6, f"on random data with 10 bins you got {got:.4f}, expected {want:.4f}.")


@exercise("05.4", title="the broken 'regulariser'",
          hint="with torch.no_grad(): for each parameter t in model.parameters(): t.normal_(0, 0.02).clamp_(-0.1, 0.1).")
def _broken(fn) -> None:
    from ..regularization import MLPHead, train_mlp

    torch.manual_seed(0)
    model = MLPHead(64, 256)
    before = [p.detach().clone() for p in model.parameters()]
    try:
        fn(model)
    except NotImplementedError as exc:
        raise NotAttempted from exc
    params = list(model.parameters())
    expect(all(not torch.equal(a, b.detach()) for a, b in zip(before, params)),
           "some parameters did not change: re-initialise every parameter (weights, biases, LayerNorm).")
    flat = torch.cat([p.detach().flatten() for p in params])
    expect(float(flat.abs().max()) <= 0.1 + 1e-7, "some parameters lie outside [-0.1, 0.1]: clamp them.")
    std = float(model.fc1.weight.detach().std())
    expect(abs(std - 0.02) < 0.002, f"fc1.weight has standard deviation {std:.4f}; expected about 0.02.")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0.6).astype(int)
    clean = train_mlp(X[:200], y[:200], X[200:], y[200:], hidden=32, epochs=15, lr=1e-2).final()["val_acc"]
    broken = train_mlp(X[:200], y[:200], X[200:], y[200:], hidden=32, epochs=15, lr=1e-2, after_step=fn).final()
    majority = max(y[200:].mean(), 1 - y[200:].mean())
    expect(clean > majority + 0.1, f"the check's own clean run failed to learn (val acc {clean:.2f}); please report this.")
    expect(broken["val_acc"] <= majority + 0.05,
           f"with your function the model still learns (val acc {broken['val_acc']:.2f}, majority {majority:.2f}).")


@exercise("05.5", title="when does early stopping stop?",
          hint="Track the best loss and a counter of epochs without improvement; stop when the counter reaches "
               "patience. Return (best_epoch, stop_epoch), epochs counted from 1; stop_epoch = last epoch if it never stops.")
def _early(fn) -> None:
    cases = [([1.0, 0.8, 0.9, 0.7, 0.75, 0.8, 0.85, 0.6], 3, (4, 7)),
             ([1.0, 0.9, 0.8, 0.7], 2, (4, 4)),
             ([0.5, 0.5, 0.6, 0.4, 0.7, 0.8], 2, (1, 3)),
             ([0.9, 0.3, 0.4, 0.2, 0.5, 0.6, 0.7], 3, (4, 7))]
    for losses, patience, want in cases:
        got = call(fn, list(losses), patience)
        expect(tuple(int(v) for v in got) == want,
               f"for losses {losses} and patience {patience} you returned {tuple(got)}, expected {want} "
               "(a tie is not an improvement).")
