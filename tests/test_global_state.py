"""Library calls leave the caller's random generators and shared models alone; model classes are picklable."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pytest
import torch

from helpers import config, models, regularization, training


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.random()), float(torch.rand(1))


def _pretrain(X, y):
    from helpers import pretraining as pt

    lines = [f"{p} works in {o}." for p in ("She", "He") for o in ("sales", "farming", "crafts repair")] * 10
    tok = pt.train_wordpiece(lines, vocab_size=50)
    seqs = pt.tokenize_lines(tok, lines)
    model = pt.make_model(tok, layers=1, hidden=16, heads=2)
    pt.pretrain(model, tok, seqs, pt.masked_set(seqs[:8], tok, batch_size=8), steps=2, batch_size=8, eval_every=2,
                progress=False, device="cpu")


def _kernel_shap(X, y):
    from helpers import shapley

    class Game:  # an additive game on 4 "words": v(z) = z . (1, 2, 3, 4)
        n_words = 4

        def __call__(self, z):
            return np.asarray(z, dtype=float) @ np.arange(1.0, 5.0)

    try:
        shapley.kernel_shap(Game(), nsamples=6, seed=3)
    except (AttributeError, TypeError):  # the game lacks parts of MaskedText the result needs; the draws are done
        pass


@pytest.mark.parametrize("call", [
    lambda X, y: training.train_head(X, y, epochs=2, seed=3, device="cpu"),
    lambda X, y: regularization.train_mlp(X, y, hidden=4, p=0.3, epochs=2, seed=3, device="cpu"),
    _pretrain,
    _kernel_shap,
    lambda X, y: models.load_classifier(device="cpu", seed=3),
], ids=["train_head", "train_mlp", "pretrain", "kernel_shap", "load_classifier"])
def test_training_does_not_reseed_the_global_generators(call):
    import shap  # noqa: F401  (importing shap draws from Python's generator once; do it before the comparison)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    config.seed_everything(123)
    expected = _draws()  # what the caller's generators give next, untouched
    config.seed_everything(123)
    call(X, y)
    assert _draws() == expected


def test_load_classifier_same_seed_same_head_whatever_the_global_state():
    heads = []
    for outer in (0, 99):
        config.seed_everything(outer)
        heads.append(models.load_classifier(device="cpu", seed=4).classifier.weight.detach().clone())
    torch.testing.assert_close(heads[0], heads[1], rtol=0, atol=0)


def test_same_seed_same_numbers_whatever_the_global_state():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    y = (X[:, 1] > 0).astype(int)
    probs = []
    for outer in (0, 99):
        config.seed_everything(outer)
        res = regularization.train_mlp(X, y, hidden=4, p=0.3, epochs=3, seed=5, device="cpu")
        probs.append(regularization.predict_proba(res.model, X))
    np.testing.assert_array_equal(probs[0], probs[1])


def test_seeded_restores_state_after_an_exception():
    config.seed_everything(7)
    expected = _draws()
    config.seed_everything(7)
    with pytest.raises(RuntimeError):
        with config.seeded(0):
            torch.rand(5)
            raise RuntimeError("boom")
    assert _draws() == expected


def _tiny_encoder():
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    return BertModel(cfg)


def test_mean_pool_classifier_is_picklable_and_leaves_the_encoder_config_alone():
    encoder = _tiny_encoder()
    labels_before = encoder.config.num_labels
    clf = models.MeanPoolClassifier(encoder, num_labels=3).eval()
    assert clf.config.num_labels == 3 and encoder.config.num_labels == labels_before
    ids = torch.tensor([[1, 5, 7, 0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    again = pickle.loads(pickle.dumps(clf))
    assert type(again) is models.MeanPoolClassifier
    torch.testing.assert_close(again(input_ids=ids, attention_mask=mask).logits,
                               clf(input_ids=ids, attention_mask=mask).logits)
    # the logits are the linear head on the mask-weighted mean of the last hidden states
    hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state[0, :3].mean(0)
    torch.testing.assert_close(clf(input_ids=ids, attention_mask=mask).logits[0], clf.classifier(hidden))
