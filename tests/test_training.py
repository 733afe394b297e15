"""helpers.training: determinism, learning a separable toy, the extra_loss hook, and fine-tuning on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import training as T


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _toy(n=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return X, y


@pytest.mark.parametrize("hidden", [0, 16])
def test_train_head_learns_separable_toy(hidden):
    X, y = _toy()
    model, hist = T.train_head(X, y, X_val=X, y_val=y, hidden=hidden, epochs=40, lr=0.05, batch_size=64,
                               device="cpu")
    p = T.predict_head(model, X)
    from scipy.special import expit

    with torch.no_grad():
        logits = model(torch.as_tensor(X)).double().numpy()
    np.testing.assert_allclose(p, expit(logits), rtol=1e-6)  # P(y=1) = sigmoid(logit), input order, shape (n,)
    assert ((p > 0.5) == y).mean() >= 0.97
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["val_accuracy"] >= 0.97 and set(hist[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy"}
    _, no_val = T.train_head(X, y, epochs=2, device="cpu")
    assert set(no_val[0]) == {"epoch", "train_loss"}  # no validation data: no validation columns


def test_train_head_deterministic():
    X, y = _toy()
    a, _ = T.train_head(X, y, epochs=3, seed=3, hidden=8, device="cpu")
    b, _ = T.train_head(X, y, epochs=3, seed=3, hidden=8, device="cpu")
    c, _ = T.train_head(X, y, epochs=3, seed=4, hidden=8, device="cpu")
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters()))


def test_extra_loss_hook_called_and_changes_training():
    X, y = _toy()
    groups = (X[:, 2] > 0).astype(int)
    calls = []

    def penalty(logits, labels, g, step):
        calls.append((tuple(logits.shape), tuple(labels.shape), None if g is None else tuple(g.shape), step))
        return 5.0 * logits.pow(2).mean()  # pulls logits towards 0

    plain, _ = T.train_head(X, y, epochs=2, batch_size=100, device="cpu")
    pen, _ = T.train_head(X, y, epochs=2, batch_size=100, extra_loss=penalty, groups=groups, device="cpu")
    assert [c[3] for c in calls] == list(range(6))  # 3 batches x 2 epochs, steps counted from 0
    assert calls[0][:3] == ((100,), (100,), (100,))
    assert not torch.allclose(plain[0].weight, pen[0].weight)
    assert np.abs(T.predict_head(pen, X) - 0.5).mean() < np.abs(T.predict_head(plain, X) - 0.5).mean()


def test_extra_loss_changes_gradient_exactly():
    """One full-batch step from the same seed: the hook's gradient adds to the cross-entropy's.

    With hook = c * sum(logits) and logit = x @ w + b, d hook / d b = c * n and d hook / d w = c * sum_i x_i.
    (The last step's gradients stay in ``.grad`` after training.)
    """
    X, y = _toy(n=64)
    c = 0.3

    def hook(logits, labels, g, step):
        return c * logits.sum()

    a, _ = T.train_head(X, y, epochs=1, batch_size=64, device="cpu")
    b, _ = T.train_head(X, y, epochs=1, batch_size=64, extra_loss=hook, device="cpu")
    lin_a, lin_b = a[0], b[0]
    assert (lin_b.bias.grad - lin_a.bias.grad).item() == pytest.approx(c * 64, rel=1e-5)
    np.testing.assert_allclose((lin_b.weight.grad - lin_a.weight.grad).numpy()[0], c * X.sum(0), rtol=1e-4,
                               atol=1e-4)


def test_sample_weight_matters_and_validated():
    X, y = _toy()
    w = np.where(y == 1, 10.0, 1.0)
    m, _ = T.train_head(X, y, epochs=5, sample_weight=w, device="cpu")
    m0, _ = T.train_head(X, y, epochs=5, device="cpu")
    assert T.predict_head(m, X).mean() > T.predict_head(m0, X).mean()
    with pytest.raises(ValueError, match="sample_weight"):
        T.train_head(X, y, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="0/1"):
        T.train_head(X, y + 1)
    with pytest.raises(ValueError, match="lengths must match"):
        T.train_head(X, y[:-1])


def test_length_bucketed_batches_cover_everything_once():
    lengths = np.random.default_rng(0).integers(5, 60, 1000)
    batches = T.length_bucketed_batches(lengths, 32, rng=np.random.default_rng(1), bucket_batches=4)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 3  # similar lengths within a batch
    again = T.length_bucketed_batches(lengths, 32, rng=np.random.default_rng(1), bucket_batches=4)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_stratified_batches_keep_every_cell_in_its_share():
    rng = np.random.default_rng(0)
    n = 2000
    groups = (rng.random(n) < 0.33).astype(int)
    labels = (rng.random(n) < np.where(groups == 1, 0.1, 0.3)).astype(int)
    lengths = rng.integers(40, 70, n)
    cells = groups * 2 + labels
    share = np.bincount(cells, minlength=4) / n
    for kw in ({}, {"lengths": lengths, "bucket_batches": 5}):
        batches = T.stratified_batches(labels, groups, 64, np.random.default_rng(1), **kw)
        assert sorted(np.concatenate(batches).tolist()) == list(range(n))
        assert len(batches) == int(np.ceil(n / 64))
        for b in batches:  # each cell within one row of its expected count
            assert np.all(np.abs(np.bincount(cells[b], minlength=4) - share * len(b)) <= 1.5), kw
        again = T.stratified_batches(labels, groups, 64, np.random.default_rng(1), **kw)
        assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    # with lengths, each batch's padding (max - mean length) is far below that of random batches
    pad = np.mean([lengths[b].max() - lengths[b].mean() for b in batches])
    pad_random = np.mean([lengths[b].max() - lengths[b].mean()
                          for b in T.stratified_batches(labels, groups, 64, np.random.default_rng(1))])
    assert pad < pad_random / 2
    # the batch DP gap of the labels themselves is much steadier than on random batches
    def batch_gaps(bs):
        return np.std([labels[b][groups[b] == 1].mean() - labels[b][groups[b] == 0].mean() for b in bs])
    random_batches = np.array_split(np.random.default_rng(1).permutation(n), len(batches))
    assert batch_gaps(batches) < batch_gaps(random_batches) / 2
    with pytest.raises(ValueError, match="same length"):
        T.stratified_batches(labels[:-1], groups, 64, rng)


def test_fine_tune_deterministic_and_hook_on_cpu():
    texts = [f"A {a}-year-old person works {h} hours a week." for a, h in zip(range(20, 44), range(30, 54))]
    labels = [int(i % 3 == 0) for i in range(len(texts))]
    steps = []

    def hook(logits, lab, g, step):
        steps.append((tuple(logits.shape), g is not None))
        return 0.0 * logits.sum()

    kw = dict(epochs=1, batch_size=8, seed=0, device="cpu", progress=False, max_length=32)
    a = T.fine_tune(texts, labels, extra_loss=hook, groups=np.arange(len(texts)) % 2, stratify=False, **kw)
    b = T.fine_tune(texts, labels, **kw)
    assert len(steps) == 3 and steps[0] == ((8, 2), True)
    for (na, pa), (_, pb) in zip(a.model.named_parameters(), b.model.named_parameters()):
        assert torch.equal(pa, pb), na
    assert a.examples_per_second > 0 and a.seconds > 0 and len(a.history) == 1
    with pytest.raises(ValueError, match="needs the groups"):
        T.fine_tune(texts, labels, stratify=True, **kw)
    seen = []
    T.fine_tune(texts, labels, groups=np.arange(len(texts)) % 2, stratify=True,
                extra_loss=lambda lo, la, g, s: seen.append(g.tolist()) or 0.0 * lo.sum(), **kw)
    assert len(seen) == 3 and all(sorted(set(x)) == [0, 1] for x in seen)  # every batch holds both groups
    p = T.predict_proba(a.model, a.tokenizer, texts[:5], batch_size=2)
    assert p.shape == (5, 2) and np.allclose(p.sum(1), 1)
    # input order is kept although prediction sorts by length
    p_rev = T.predict_proba(a.model, a.tokenizer, texts[:5][::-1], batch_size=2)
    np.testing.assert_allclose(p_rev[::-1], p, atol=1e-5)


def test_weight_decay_spares_the_bias():
    """With a huge decoupled decay the weights vanish, but the undecayed bias still reaches the intercept-only
    maximum-likelihood value logit(mean y) (it would be dragged to 0 if it were decayed)."""
    from scipy.special import logit

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5)).astype(np.float32)
    y = (rng.random(400) < 0.8).astype(int)
    model, _ = T.train_head(X, y, epochs=150, lr=0.05, weight_decay=10.0, batch_size=400)
    assert float(model[0].weight.detach().abs().max()) < 0.15  # AdamW's equilibrium |w| ~ 1 / weight_decay
    assert float(model[0].bias.detach()) == pytest.approx(logit(y.mean()), abs=0.05)
    from helpers.config import seeded
    from helpers.regularization import make_optimizer

    with seeded(0):
        everything = T.Head.build(5)
    opt = make_optimizer(everything, "adamw", 0.05, 10.0, exclude_no_decay=False)
    everything, _ = T.train_head(X, y, model=everything, optimizer=opt, epochs=150, batch_size=400)
    assert float(everything[0].bias.detach()) < 0.5  # decayed, the bias is dragged towards 0


def test_iterate_average_is_the_mean_of_the_recorded_iterates():
    from helpers.heads import Callback, IterateAverage

    class Keep(Callback):
        def __init__(self):
            self.states = []

        def on_step(self, model, record):
            self.states.append(model[0].weight.detach().clone().numpy())

    X, y = _toy()
    keep, avg = Keep(), IterateAverage(first_step=5)
    model, _ = T.train_head(X, y, epochs=3, batch_size=64, callbacks=[keep, avg])
    assert len(keep.states) == 3 * int(np.ceil(len(X) / 64))
    np.testing.assert_allclose(model[0].weight.detach().numpy(), np.mean(keep.states[5:], axis=0), atol=1e-6)


def test_l2_term_adds_its_gradient_and_early_stopping_callback_restores(tmp_path):
    """l2=lam gives the same run as an extra_loss computing lam/2 ||W||^2 by hand; EarlyStopping as a callback
    stops after `patience` bad epochs and leaves the best epoch's weights."""
    from helpers.regularization import EarlyStopping

    X, y = _toy()
    a, _ = T.train_head(X, y, hidden=8, epochs=3, l2=0.5, seed=1)
    hand = None

    def by_hand(logits, labels, groups, step):
        return 0.25 * sum((p**2).sum() for p in hand.parameters() if p.ndim == 2)

    import torch

    from helpers.config import seeded
    from helpers.heads import Head

    with seeded(1):
        hand = Head.build(X.shape[1], 8)
    b, _ = T.train_head(X, y, model=hand, epochs=3, extra_loss=by_hand, seed=1)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=0)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 20)).astype(np.float32)
    y = ((X[:, 0] + 2 * rng.normal(size=300)) > 0).astype(int)  # noisy: a wide head overfits soon
    es = EarlyStopping(patience=2, path=tmp_path / "best.safetensors")
    model, hist = T.train_head(X[:200], y[:200], X_val=X[200:], y_val=y[200:], hidden=32, lr=0.05,
                                      epochs=100, callbacks=[es])
    assert es.stopped_epoch == len(hist) < 100 and len(hist) == es.best_epoch + 2
    from sklearn.metrics import log_loss

    best = min(r["val_loss"] for r in hist)
    assert log_loss(y[200:], T.predict_head(model, X[200:]), labels=[0, 1]) == pytest.approx(best, abs=1e-5)
