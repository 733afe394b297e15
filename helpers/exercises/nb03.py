"""Self-checks for notebook 03 (fine-tuning and fairness metrics): the gaps by hand, calibration, thresholds, two
bugs in a fine-tuning loop and its evaluation, an experiment with per-group thresholds."""

from __future__ import annotations

import numpy as np

from . import NotAttempted, call, choice, exercise, expect, experiment

_METRICS = "helpers.fairness.metrics"


def _data(seed: int, n: int = 600, k: int = 3):
    rng = np.random.default_rng(seed)
    groups = np.array([f"g{i}" for i in range(k)])[rng.integers(0, k, n)]
    order = rng.permutation(k)  # group shifts in random order: the extremes are not always the first and last
    shift = np.array([0.1 * order[int(g[1:])] for g in groups])
    y = (rng.random(n) < 0.2 + shift).astype(int)
    prob = np.clip(0.15 + 0.5 * y + shift + rng.normal(0, 0.15, n), 0.001, 0.999)
    return y, (prob >= 0.5).astype(int), prob, groups


@exercise("03.1", title="demographic-parity difference by hand",
          hint="A group's selection rate is the share of its rows with y_pred = 1. With more than two groups, the "
               "difference is taken between the extreme groups.",
          forbid=("fairlearn.metrics.demographic_parity_difference", "fairlearn.metrics.selection_rate",
                  "fairlearn.metrics.MetricFrame", f"{_METRICS}.demographic_parity_difference",
                  f"{_METRICS}.selection_rates", f"{_METRICS}.group_metrics"))
def _check_03_1(answer) -> None:
    from fairlearn.metrics import demographic_parity_difference

    for seed, k in ((0, 2), (1, 3), (2, 5)):
        y, pred, _, g = _data(seed, k=k)
        ref = demographic_parity_difference(y, pred, sensitive_features=g)
        got = float(call(answer, pred, g))
        expect(abs(got - ref) < 1e-9, f"with {k} groups (selection rates "
                                      + ", ".join(f"{v:.3f}" for v in (pred[g == a].mean() for a in np.unique(g)))
                                      + f") you returned {got:.4f}.")


@exercise("03.2", title="equalized-odds difference by hand",
          hint="Two gaps: one among the rows with y_true = 1 (true-positive rates), one among the rows with "
               "y_true = 0 (false-positive rates). Each is a largest-minus-smallest over groups; which of the two "
               "does equalized odds report?",
          forbid=("fairlearn.metrics.equalized_odds_difference", "fairlearn.metrics.true_positive_rate",
                  "fairlearn.metrics.false_positive_rate", "fairlearn.metrics.MetricFrame",
                  f"{_METRICS}.equalized_odds_difference", f"{_METRICS}.group_metrics",
                  f"{_METRICS}.equal_opportunity_difference"))
def _check_03_2(answer) -> None:
    from fairlearn.metrics import equalized_odds_difference

    for seed, k in ((0, 2), (3, 4), (5, 3)):
        y, pred, _, g = _data(seed, k=k)
        ref = equalized_odds_difference(y, pred, sensitive_features=g)
        got = float(call(answer, y, pred, g))
        expect(abs(got - ref) < 1e-9, f"with {k} groups you returned {got:.4f}; compare it with the true-positive-rate "
                                      "and false-positive-rate gaps of that data.")


@exercise("03.3", title="calibration in the large, per group",
          hint="Per group, two means over the same rows: of the predicted probabilities and of the labels. The sign "
               "matters: positive means the model over-predicts.",
          forbid=(f"{_METRICS}.group_metrics",))
def _check_03_3(answer) -> None:
    from ..fairness.metrics import group_metrics

    for seed, k in ((4, 3), (6, 2)):
        y, pred, prob, g = _data(seed, k=k)
        ref = group_metrics(y, pred, g, y_prob=prob)["calibration_gap"]
        got = call(answer, y, prob, g)
        got = dict(got.items()) if hasattr(got, "items") else None
        expect(got is not None, "return a dict or a pandas Series mapping each group to its gap.")
        expect(set(map(str, got)) == set(map(str, ref.index)), f"expected the groups {list(ref.index)}, got {list(got)}.")
        for grp, v in ref.items():
            expect(abs(float(got[grp]) - v) < 1e-9, f"group {grp}: you returned {float(got[grp]):+.4f}; its mean "
                                                    f"probability is {prob[g == grp].mean():.4f}.")


@exercise("03.4", title="one threshold per group for equal selection rates",
          hint="Selecting a fraction r of a group with 'score >= t' means that a fraction 1 - r of its scores lies "
               "below t: which quantile of the group's own scores is that?")
def _check_03_4(answer) -> None:
    for seed, k in ((5, 3), (7, 2)):
        _, _, prob, g = _data(seed, n=2000, k=k)
        for rate in (0.1, 0.2, 0.45):
            got = call(answer, prob, g, rate)
            got = dict(got.items()) if hasattr(got, "items") else None
            expect(got is not None, "return a dict {group: threshold}.")
            for grp in np.unique(g):
                expect(grp in got, f"no threshold for group {grp}.")
                m = g == grp
                sel = (prob[m] >= float(got[grp])).mean()
                expect(abs(sel - rate) <= 0.02, f"with rate = {rate}, group {grp} is selected at rate {sel:.3f}.")


class _Output:
    def __init__(self, logits, loss):
        self.logits, self.loss = logits, loss


def tiny_classifier(seed: int = 0, d: int = 6, classes: int = 2):
    """A linear classifier that answers like a transformers model: ``model(x, labels=y)`` returns ``.logits`` and,
    when labels are given, ``.loss`` (the mean cross-entropy)."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(d, classes)

        def forward(self, x, labels=None):
            logits = self.linear(x)
            loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels)
            return _Output(logits, loss)

    torch.manual_seed(seed)
    return Tiny()


def _batches(seed: int, n_batches: int = 5, size: int = 16, d: int = 6, classes: int = 2):
    import torch

    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(size, d, generator=g), torch.randint(0, classes, (size,), generator=g))
            for _ in range(n_batches)]


def _reference_epoch(model, batches, optimizer):
    for x, y in batches:
        optimizer.zero_grad()
        model(x, labels=y).loss.backward()
        optimizer.step()


def _epoch_as_printed(model, batches, optimizer):
    """The notebook's loop as printed: the cross-entropy counted twice and two optimiser steps per batch."""
    import torch

    loss_fn = torch.nn.CrossEntropyLoss()
    for x, y in batches:
        optimizer.zero_grad()
        out = model(x, labels=y)
        (out.loss + loss_fn(out.logits, y)).backward()
        optimizer.step()
        optimizer.step()


def _accuracy_as_printed(model, x, labels) -> float:
    """The notebook's evaluation as printed: (n,) predictions against (n, 1) labels broadcast to (n, n)."""
    import torch

    with torch.no_grad():
        pred = model(x).logits.argmax(dim=1)
    return float((pred == labels[:, None]).float().mean())


@exercise("03.5", title="spot the bug: a fine-tuning loop",
          hint="Count, for one batch, how many cross-entropies enter the loss and how many times the parameters "
               "move. What does model(x, labels=y) already compute?",
          kind="spot-the-bug")
def _check_03_5(answer) -> None:
    import torch

    batches, printed, mine = _batches(0), tiny_classifier(0), tiny_classifier(0)
    _epoch_as_printed(printed, batches, torch.optim.SGD(printed.parameters(), lr=0.1))
    call(answer, mine, batches, torch.optim.SGD(mine.parameters(), lr=0.1))
    if all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), printed.state_dict().values())):
        raise NotAttempted  # the loop exactly as printed
    for seed, momentum in ((0, 0.0), (1, 0.9)):
        batches = _batches(seed)
        ref, mine = tiny_classifier(seed), tiny_classifier(seed)
        _reference_epoch(ref, batches, torch.optim.SGD(ref.parameters(), lr=0.1, momentum=momentum))
        opt = torch.optim.SGD(mine.parameters(), lr=0.1, momentum=momentum)
        call(answer, mine, batches, opt)
        moved = sum(float((a - b).detach().abs().sum()) for a, b in zip(mine.parameters(), ref.parameters()))
        start = tiny_classifier(seed).state_dict()
        size = sum(float((a - start[k]).abs().sum()) for k, a in ref.state_dict().items())
        expect(moved < 1e-6, f"after one epoch of {len(batches)} batches (SGD, momentum {momentum}) the weights differ "
                             f"from one cross-entropy step per batch by {moved:.4f} (the correct epoch moves them "
                             f"by {size:.4f} in all).")


@exercise("03.6", title="spot the bug: an evaluation",
          hint="Print the shape of every tensor in the comparison, for a batch of 5 rows. What shape should a "
               "vector of right/wrong flags have?",
          kind="spot-the-bug")
def _check_03_6(answer) -> None:
    import torch

    trials = []
    for seed, classes in ((0, 2), (1, 3), (2, 2)):
        model = tiny_classifier(seed, classes=classes)
        x, y = _batches(seed + 10, n_batches=1, size=50, classes=classes)[0]
        trials.append((model, x, y, classes, call(answer, model, x, y)))
    try:
        untouched = all(abs(float(got) - _accuracy_as_printed(model, x, y)) < 1e-9 for model, x, y, _, got in trials)
    except (TypeError, ValueError, RuntimeError):
        untouched = False
    if untouched:
        raise NotAttempted  # the evaluation exactly as printed
    for model, x, y, classes, got in trials:
        with torch.no_grad():
            want = float((model(x).logits.argmax(1) == y).float().mean())
        expect(np.ndim(got) == 0, f"expected one number, got {type(got).__name__} of shape {np.shape(got)}.")
        expect(abs(float(got) - want) < 1e-6, f"on 50 rows with {classes} classes your accuracy is {float(got):.4f}; "
                                              "count the right answers by hand for a few rows and compare.")


def _eo_move(run) -> str:
    before, after = float(run["before"]), float(run["after"])
    return "down" if after < before - 0.02 else ("up" if after > before + 0.02 else "about the same")


experiment(
    "03.7", "equal selection rates and the equalized-odds gap",
    outcomes=("down", "about the same", "up"),
    observe=_eo_move,
    reasons={"a": "equal selection rates imply equal error rates, so both gaps close together",
             "b": "the thresholds do not change which rows are selected",
             "c": "demographic parity and equalized odds are different criteria: when base rates differ, equal "
                  "selection rates need different true- and false-positive rates, so fixing one gap moves the other",
             "d": "per-group thresholds remove the information about sex from the model"},
    correct=lambda observed: "c",
    nudges={"a": "look at the run: the equalized-odds gap did not simply follow the selection rates.",
            "b": "the selection rates changed: that is what the thresholds were for.",
            "d": "the thresholds use sex explicitly: they need to know each row's group."},
    hint="Write the selection rate of a group as TPR x base rate + FPR x (1 - base rate). If the base rates differ, "
         "what must happen to TPR or FPR for the selection rates to be equal?",
)

choice(
    "03.8", "what a zero demographic-parity difference says",
    options={"a": "the classifier treats women and men equally in every sense",
             "b": "its true-positive rates are equal across the groups",
             "c": "it selects the same share of each group; its error rates can still differ, and a classifier that "
                  "selects nobody also scores 0",
             "d": "its accuracy is the same in both groups"},
    correct="c",
    nudges={"a": "the constant classifier of notebook 00 has a zero gap and treats nobody well.",
            "b": "that is equal opportunity, a different criterion: 03.7 shows the two can move apart.",
            "d": "selection rates say nothing about whom the selections are right for."},
    hint="Demographic parity compares one number per group. Which one, and which numbers does it leave out?",
)
