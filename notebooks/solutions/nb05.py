"""Reference solutions for notebook 05 (tests prove each passes its check)."""

import numpy as np
import torch


def solution_05_1():
    return lambda params, lam: 0.5 * lam * sum((p**2).sum() for p in params)


def solution_05_2():
    def dropout(x, p, training):
        if not training or p == 0:
            return x
        mask = (torch.rand_like(x) >= p).to(x.dtype)
        return x * mask / (1 - p)

    return dropout


def solution_05_3():
    def ece(y, prob, n_bins):
        y, prob = np.asarray(y, float), np.asarray(prob, float)
        # an edge value belongs to the lower bin (as in sklearn's calibration_curve)
        edges = np.linspace(0, 1, n_bins + 1)
        ids = np.searchsorted(edges[1:-1], prob)
        total = 0.0
        for b in range(n_bins):
            m = ids == b
            if m.any():
                total += m.sum() / len(y) * abs(y[m].mean() - prob[m].mean())
        return total

    return ece


def solution_05_4():
    def broken_regularizer_(model):
        with torch.no_grad():
            for t in model.parameters():
                t.normal_(0.0, 0.02).clamp_(-0.1, 0.1)

    return broken_regularizer_


def solution_05_5():
    def early_stop_epochs(losses, patience):
        best, best_epoch, bad = float("inf"), 0, 0
        for epoch, loss in enumerate(losses, start=1):
            if loss < best:
                best, best_epoch, bad = loss, epoch, 0
            else:
                bad += 1
                if bad >= patience:
                    return best_epoch, epoch
        return best_epoch, len(losses)

    return early_stop_epochs


def solution_05_6():
    """Norm of the gradient of a penalty with respect to the model's parameters; 0 when it ignores them.

    Model answer: the three terms are constants as functions of theta (fixed rates; labels and inputs of the
    data), so their gradient is zero and adding them to the loss changes no update. L2 is the only real one.
    """

    def weight_gradient_norm(penalty_fn, model):
        value = penalty_fn(model)
        params = list(model.parameters())
        if not (torch.is_tensor(value) and value.requires_grad):
            return 0.0
        grads = torch.autograd.grad(value, params, allow_unused=True)
        return float(torch.sqrt(sum((g**2).sum() for g in grads if g is not None)))

    return weight_gradient_norm


def solution_05_7():
    """Model answer when the gap shrinks (a): over the longer training L2 at lambda = 0.1 keeps the head's weights
    small, it can no longer fit the training set's noise, and training accuracy falls towards validation accuracy.
    The check judges the change by the noise of a gap and accepts the reasons true of the student's run: (d),
    (e) if the gap with L2 is still beyond the noise, (c) if the unregularised one is not."""
    return "a"


def solution_05_8():
    """Model answer: (b); its author probably meant weight decay or a max-norm constraint."""
    return "b"
