"""helpers.training.fine_tune's optimiser, LP-FT's linear probe, gradient clipping and random-state hygiene."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from helpers import training as T
from helpers.models import load_classifier, load_tokenizer

TEXTS = [f"A {a}-year-old person works {h} hours a week{' in sales' if a % 3 == 0 else ''}."
         for a, h in zip(range(20, 44), range(30, 54))]
LABELS = np.array([int(a % 3 == 0) for a in range(20, 44)])
KW = dict(epochs=1, batch_size=8, device="cpu", progress=False, max_length=32)


def test_adamw_decays_only_weight_matrices_and_follows_the_linear_schedule():
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2))
    model.LayerNorm = torch.nn.LayerNorm(2)  # a name that marks LayerNorm parameters as in BERT
    opt, sched = T.adamw_with_schedule(model, lr=0.1, weight_decay=0.5, warmup_steps=2, total_steps=6)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        for p in model.parameters():
            p.grad = torch.zeros_like(p)  # zero gradient: only weight decay can move a parameter
        opt.step()
        sched.step()
    # warm-up 0, 0.05, then linear decay 0.1 * (6 - s) / 4 (transformers' get_linear_schedule_with_warmup)
    np.testing.assert_allclose(lrs, [0.0, 0.05, 0.1, 0.075, 0.05, 0.025])
    shrink = np.prod([1 - lr * 0.5 for lr in lrs])  # decoupled decay: p <- p (1 - lr wd) each step
    torch.testing.assert_close(model[0].weight, before["0.weight"] * shrink)
    for name in ["0.bias", "1.weight", "1.bias", "LayerNorm.weight", "LayerNorm.bias"]:
        assert torch.equal(dict(model.named_parameters())[name], before[name]), name
    frozen = torch.nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        T.adamw_with_schedule(frozen, lr=0.1, weight_decay=0.0, warmup_steps=1, total_steps=2)


def test_linear_probe_is_scikit_learns_logistic_regression_on_the_pooled_features():
    model = load_classifier(device="cpu", seed=0)
    tok = T.pretokenize(TEXTS, load_tokenizer(), max_length=32, device="cpu")
    info = T.linear_probe(model, tok, LABELS)
    enc = load_tokenizer()(TEXTS, padding=True, truncation=True, max_length=32, return_tensors="pt")
    with torch.no_grad():  # reference features: masked mean of the encoder's token vectors, by hand
        hidden = model.encoder(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        X = ((hidden * m).sum(1) / m.sum(1)).numpy()
        p_model = torch.softmax(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits, -1)
    ref = LogisticRegression(C=info["C"], max_iter=5000).fit(X, LABELS).predict_proba(X)[:, 1]
    np.testing.assert_allclose(p_model[:, 1].numpy(), ref, atol=2e-3)
    assert info["train_accuracy"] == pytest.approx(((ref >= 0.5) == LABELS).mean())
    with pytest.raises(ValueError, match="classifier"):
        T.linear_probe(torch.nn.Linear(2, 2), tok, LABELS)


def test_fine_tune_starts_from_the_probe_and_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    np.random.seed(7)
    expected = torch.rand(3), np.random.rand(2)
    torch.manual_seed(123)
    np.random.seed(7)
    res = T.fine_tune(TEXTS, LABELS, lr=1e-9, seed=0, **KW)  # lr ~ 0: the model stays the probed one
    torch.testing.assert_close(torch.rand(3), expected[0])
    np.testing.assert_array_equal(np.random.rand(2), expected[1])
    p = T.predict_proba(res.model, res.tokenizer, TEXTS)[:, 1]
    assert ((p >= 0.5) == LABELS).mean() >= 0.9  # a random head would sit near the majority rate
    plain = T.fine_tune(TEXTS, LABELS, lr=1e-9, seed=0, linear_probe_first=False, **KW)
    p_plain = T.predict_proba(plain.model, plain.tokenizer, TEXTS)[:, 1]
    assert np.ptp(p_plain) < np.ptp(p)


def test_gradient_clipping_bounds_the_step():
    def moved(**kw):
        base = load_classifier(device="cpu", seed=0).state_dict()
        res = T.fine_tune(TEXTS, LABELS, lr=1e-3, seed=0, linear_probe_first=False, **KW, **kw)
        return sum(float((p - base[n]).norm()) for n, p in res.model.state_dict().items() if n.startswith("encoder"))

    # Adam divides by sqrt(v) + eps: a gradient clipped far below eps moves the weights by almost nothing
    assert moved(max_grad_norm=1e-12) < 0.01 * moved(max_grad_norm=1.0)
    with pytest.raises(ValueError, match="max_grad_norm"):
        T.fine_tune(TEXTS, LABELS, max_grad_norm=0.0, **KW)
