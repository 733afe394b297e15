"""Self-checks for notebook 05 (L2, dropout, calibration, the broken "regulariser", early stopping, penalties that
ignore the weights, an L2 experiment, one question)."""

from __future__ import annotations

import numpy as np
import torch

from . import call, call_in_place, choice, exercise, expect, experiment


@exercise("05.1", title="the L2 penalty",
          hint="The squared norm of a list of tensors is the sum, over the tensors, of the sum of their squared "
               "entries. Stay in torch (no .item(), no numpy) so the penalty has a gradient; its gradient must be "
               "lam * theta.",
          forbid=("helpers.regularization.l2_penalty",))
def _l2(fn) -> None:
    gen = torch.Generator().manual_seed(0)
    for shapes, lam in ((((3, 4), (5,)), 0.3), (((7,), (2, 2), (1, 6)), 1.7), (((10, 3),), 0.01)):
        params = [torch.randn(*s, generator=gen, dtype=torch.float64).requires_grad_(True) for s in shapes]
        got = call(fn, params, lam)
        expect(torch.is_tensor(got) and got.numel() == 1, f"expected a scalar tensor, got {type(got).__name__}.")
        value = float(got.detach())
        norm2 = sum(float((p.detach() ** 2).sum()) for p in params)
        expect(abs(value - 0.5 * lam * norm2) < 1e-9,
               f"for {len(params)} tensors with squared norm {norm2:.4f} and lam = {lam} your penalty is {value:.6f}.")
        expect(got.requires_grad, "the result has no gradient: compute it with torch operations on the parameters.")
        grads = torch.autograd.grad(got, params)
        expect(all(torch.allclose(g, lam * p) for g, p in zip(grads, params)),
               "the penalty's value is right but its gradient is not lam * theta.")


@exercise("05.2", title="inverted dropout",
          hint="Each entry survives with probability 1 - p; the survivors are rescaled so that the expected output "
               "equals x. In eval mode nothing is dropped. torch.rand_like gives one uniform number per entry.",
          forbid=("helpers.regularization.inverted_dropout", "torch.nn.functional.dropout", "torch.dropout"))
def _dropout(fn) -> None:
    torch.manual_seed(0)
    for p, shape, value in ((0.25, (200_000,), 2.0), (0.6, (400, 500), -1.5), (0.1, (100, 10, 100), 0.5)):
        x = torch.full(shape, value)
        out = call(fn, x.clone(), p, True)
        expect(torch.is_tensor(out) and out.shape == x.shape, f"return a tensor of x's shape {tuple(x.shape)}.")
        zero = float((out == 0).float().mean())
        expect(abs(zero - p) < 0.01, f"with p = {p}, {zero:.3f} of the entries are zero.")
        expect(abs(float(out.mean()) - value) < 0.03 * abs(value) + 0.01,
               f"with p = {p} and every entry {value}, the mean of your output is {float(out.mean()):.3f}.")
        kept = out[out != 0]
        expect(torch.allclose(kept, torch.full_like(kept, value / (1 - p))),
               f"with p = {p} the surviving entries are {float(kept[0]):.4f} (input {value}).")
        same = call(fn, x.clone(), p, False)
        expect(torch.equal(same, x), f"in eval mode (training=False) the output differs from x (p = {p}).")


@exercise("05.3", title="expected calibration error",
          hint="Three steps: give each probability a bin number (mind the edges: a value on an inner edge goes to "
               "the lower bin, and 1.0 to the last); per non-empty bin, compare mean label with mean probability; "
               "weight each bin by its share of the rows.",
          forbid=("helpers.regularization.expected_calibration_error",
                  "helpers.fairness.metrics.expected_calibration_error", "sklearn.calibration.calibration_curve"))
def _ece(fn) -> None:
    from ..regularization import expected_calibration_error

    got = float(call(fn, np.array([0, 1, 1, 0]), np.array([0.1, 0.9, 0.8, 0.3]), 2))
    expect(abs(got - 0.175) < 1e-9, f"on y = [0, 1, 1, 0], p = [.1, .9, .8, .3] with 2 bins you got {got:.4f}.")
    rng = np.random.default_rng(0)
    for n, bins, grid in ((500, 10, False), (300, 10, True), (1000, 5, True), (200, 7, False)):
        edges = np.linspace(0.0, 1.0, bins + 1)
        p = rng.uniform(size=n)
        if grid:  # half the values exactly on a bin edge
            p[: n // 2] = edges[rng.integers(0, bins + 1, n // 2)]
        truth = np.clip(p + 0.3 * np.sin(3 * np.pi * p), 0, 1)  # over- and under-confident in turn
        y = (rng.uniform(size=n) < truth).astype(int)
        want = expected_calibration_error(y, p, bins)
        got = float(call(fn, y, p, bins))
        where = " (many probabilities lie exactly on bin edges)" if grid else ""
        expect(abs(got - want) < 1e-9, f"on {n} random rows with {bins} bins{where} you got {got:.4f}.")


@exercise("05.4", title="the broken 'regulariser'",
          hint="Inside torch.no_grad(), overwrite every tensor of model.parameters() in place: torch tensors have "
               "in-place methods that draw from a normal distribution and that clamp.",
          forbid=("helpers.regularization.reinit_and_clamp_",))
def _broken(fn) -> None:
    from ..regularization import MLPHead, train_mlp

    torch.manual_seed(0)
    model = MLPHead(64, 256)
    before = [p.detach().clone() for p in model.parameters()]
    call_in_place(fn, model)
    params = list(model.parameters())
    unchanged = [n for (n, b), a in zip(model.named_parameters(), before) if torch.equal(a, b.detach())]
    expect(not unchanged, f"these parameters did not change: {unchanged}.")
    flat = torch.cat([p.detach().flatten() for p in params])
    expect(float(flat.abs().max()) <= 0.1 + 1e-7, f"the largest parameter is {float(flat.abs().max()):.3f} in absolute value.")
    std = float(model.fc1.weight.detach().std())
    expect(abs(std - 0.02) < 0.002, f"fc1.weight has standard deviation {std:.4f}.")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 16)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0.6).astype(int)
    clean = train_mlp(X[:200], y[:200], X[200:], y[200:], hidden=32, epochs=15, lr=1e-2).final()["val_acc"]
    broken = train_mlp(X[:200], y[:200], X[200:], y[200:], hidden=32, epochs=15, lr=1e-2,
                       after_step=lambda m: call_in_place(fn, m)).final()
    majority = max(y[200:].mean(), 1 - y[200:].mean())
    expect(clean > majority + 0.1, f"the check's own clean run failed to learn (val acc {clean:.2f}); please report this.")
    expect(broken["val_acc"] <= majority + 0.05,
           f"with your function the model still learns (val acc {broken['val_acc']:.2f}, majority {majority:.2f}).")


@exercise("05.5", title="when does early stopping stop?",
          hint="Walk through the losses once, keeping the best so far and a count of epochs since it improved. What "
               "happens to that count on a tie, and at which count do you stop?",
          forbid=("helpers.regularization.EarlyStopping",))
def _early(fn) -> None:
    cases = [([1.0, 0.8, 0.9, 0.7, 0.75, 0.8, 0.85, 0.6], 3, (4, 7)),
             ([1.0, 0.9, 0.8, 0.7], 2, (4, 4)),
             ([0.5, 0.5, 0.6, 0.4, 0.7, 0.8], 2, (1, 3)),
             ([0.9, 0.3, 0.4, 0.2, 0.5, 0.6, 0.7], 3, (4, 7))]
    rng = np.random.default_rng(5)
    for _ in range(20):
        losses = np.round(rng.uniform(0.2, 1.0, rng.integers(3, 25)), 1).tolist()  # rounded: ties happen
        patience = int(rng.integers(1, 6))
        best, best_epoch, bad, stop = float("inf"), 0, 0, len(losses)
        for epoch, loss in enumerate(losses, start=1):
            best, best_epoch, bad = (loss, epoch, 0) if loss < best else (best, best_epoch, bad + 1)
            if bad >= patience:
                stop = epoch
                break
        cases.append((losses, patience, (best_epoch, stop)))
    for losses, patience, want in cases:
        got = call(fn, list(losses), patience)
        expect(tuple(int(v) for v in got) == want,
               f"for losses {losses} and patience {patience} you returned {tuple(got)}.")


def regularisers_that_ignore_the_weights(X: torch.Tensor, y: torch.Tensor) -> dict:
    """Three "regularisers" from course notes (exercise 05.6), each a function of a model, and L2 for comparison.

    * dropout term: lambda'/2 * sum_i p_i (1 - p_i) over the layers' fixed dropout rates p_i;
    * pair term: sum over pairs (i, j) of I(x_i = x_j) (y_i - y_j)^2 over a batch;
    * input-norm term: mu * sum_j ||x_j|| over a batch's inputs.
    None of the three reads the model's parameters.
    """
    from ..regularization import l2_penalty

    rates = torch.tensor([0.1, 0.5, 0.3])
    X = torch.tensor(np.array(X, dtype=np.float32))  # a copy: cached embeddings may be read-only
    y = torch.tensor(np.array(y, dtype=np.float32))
    same = (X[:, None, :] == X[None, :, :]).all(-1).float()
    return {
        "dropout term  lambda'/2 sum p_i(1 - p_i)": lambda model: 0.5 * 0.1 * (rates * (1 - rates)).sum(),
        "pair term  sum I(x_i = x_j)(y_i - y_j)^2": lambda model: (same * (y[:, None] - y[None, :]) ** 2).sum(),
        "input norm  mu sum ||x_j||": lambda model: 0.01 * X.norm(dim=1).sum(),
        "L2  lambda/2 ||theta||^2 (for comparison)": lambda model: l2_penalty(model.parameters(), 0.1),
    }


@exercise("05.6", title="spot the bug: regularisers that ignore the weights",
          hint="torch.autograd.grad(value, list(model.parameters()), allow_unused=True) returns None for a parameter "
               "the value does not depend on; a value that is not a tensor with requires_grad depends on none of "
               "them. What is the gradient norm then?",
          kind="spot-the-bug")
def _weight_gradient(fn) -> None:
    from ..regularization import MLPHead

    gen = torch.Generator().manual_seed(1)
    X = torch.randn(12, 5, generator=gen)
    X[6:] = X[:6]  # duplicated rows, so the pair term is not 0
    y = torch.randint(0, 2, (12,), generator=gen)
    torch.manual_seed(0)
    model = MLPHead(5, 8)
    terms = regularisers_that_ignore_the_weights(X, y)
    terms["L1  sum |theta|"] = lambda m: sum(p.abs().sum() for p in m.parameters())
    for name, term in terms.items():
        value = term(model)
        if torch.is_tensor(value) and value.requires_grad:
            grads = torch.autograd.grad(value, list(model.parameters()), allow_unused=True)
            want = float(torch.sqrt(sum((g ** 2).sum() for g in grads if g is not None)))
        else:
            want = 0.0
        got = call(fn, term, model)
        expect(np.ndim(got) == 0, f"return one number (the gradient's norm), got {type(got).__name__}.")
        expect(abs(float(got) - want) < 1e-6 * max(1.0, want),
               f"for the {name.split('  ')[0]} your gradient norm is {float(got):.4g}; the penalty's value is "
               f"{float(value.detach() if torch.is_tensor(value) else value):.4g}.")


def _gap_move(run) -> str:
    """``run``: ``{"before": gap, "after": gap, "noise": gap_noise}``: the train - validation accuracy gaps at
    lambda = 0 and 0.1 and the noise of one such gap (:func:`helpers.stats.gap_noise`)."""
    before, after, noise = float(run["before"]), float(run["after"]), float(run["noise"])
    return "smaller" if after < before - noise else ("larger" if after > before + noise else "about the same")


def _gap_reasons(observed: str, run) -> str:
    """The reasons true of this run: (c) only if the unregularised gap is within the noise, (e) only if the gap
    with L2 is still beyond it, (d) only if the two gaps differ by less than the noise; (f) when the gap grew beyond
    the noise although it stays within the noise with L2 (possible only when the gap without L2 was below 0)."""
    overfit_before, overfit_after = run["before"] > run["noise"], run["after"] > run["noise"]
    if observed == "smaller":
        return "a"
    if observed == "about the same":
        return "d" + ("e" if overfit_after else "") + ("" if overfit_before else "c")
    return "e" if overfit_after else "f"


experiment(
    "05.7", "what L2 does to the train-validation gap over a longer training",
    outcomes=("smaller", "about the same", "larger"),
    observe=_gap_move,
    reasons={"a": "the penalty pulls the weights towards zero, so the head cannot fit the training set's "
                  "idiosyncrasies: training accuracy falls towards validation accuracy",
             "b": "L2 adds training data",
             "c": "this head hardly overfits without regularisation here, so there is little gap for L2 to close",
             "d": "the difference is within the noise of a train - validation gap on these few sentences",
             "e": "lambda = 0.1 is too weak for this longer training: with it the head still fits its training "
                  "sentences better than new ones by more than the noise",
             "f": "none of these: the gap without L2 was below 0 (validation better than training), so a rise to "
                  "a gap within the noise is not overfitting; rerun with another seed"},
    correct=_gap_reasons,
    nudges={"a": "that would make the gap smaller by more than its noise, and this run shows otherwise.",
            "b": "the training set is the same in every run of the sweep.",
            "c": "look at the unregularised gap at lambda = 0: is it within the noise printed in section 1?",
            "d": "the change this run shows is larger than the noise of a gap.",
            "e": "look at the gap at lambda = 0.1: is it still beyond the noise?"},
    hint="Read the table at lambda = 0 and lambda = 0.1: the train and the validation accuracy separately, and "
         "compare each gap, and their difference, with the noise of a gap (section 1).",
)

choice(
    "05.8", "what re-initialise-and-clamp regularises",
    options={"a": "it is a strong form of weight decay",
             "b": "nothing useful: it throws away what each step learned, so the model is a fresh random network "
                  "after every step, and its decisions carry nothing learned from the data (typically one class for "
                  "nearly everyone, chosen by the sign of a random bias)",
             "c": "it is dropout applied to the weights",
             "d": "it is early stopping after one step"},
    correct="b",
    nudges={"a": "weight decay shrinks the learned weights a little each step; this replaces them.",
            "c": "dropout zeroes random units for one forward pass and keeps the learned weights.",
            "d": "early stopping keeps the best weights it has seen; this keeps none."},
    hint="After one optimiser step and one call of the function, what is left of the update?",
)
