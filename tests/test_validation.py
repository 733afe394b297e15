"""Bad inputs to the public helpers students call: each raises a ValueError whose message names the argument."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import governance, models, regularization, training, validation
from helpers.fairness import constrained as fc
from helpers.fairness import metrics, preprocessing, proxies

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4)).astype(np.float32)
Y = np.tile([0, 1], 20)
G = np.repeat([0, 1], 20)
SEX = np.where(G == 1, "Female", "Male")
X_NAN = X.copy()
X_NAN[3, 1] = np.nan


def _mixture():
    head = fc.train_fair_head(X, Y, G, epochs=2, batch_size=16, keep_iterates=True)
    return fc.mix_iterates(head, X, Y, G, constraint="dp", delta=0.5)


@pytest.fixture(scope="module")
def heads():
    head, _ = training.train_head(X, Y, epochs=1, device="cpu")
    mlp = regularization.train_mlp(X, Y, hidden=4, epochs=1, device="cpu").model
    return {"head": head, "mlp": mlp}


# (case id, call(heads), the words the message must contain)
CASES = [
    # empty
    ("train_head empty X", lambda h: training.train_head(X[:0], Y[:0]), "X_train"),
    ("train_mlp empty y", lambda h: regularization.train_mlp(X, []), "y_train"),
    ("encode_groups empty", lambda h: fc.encode_groups([]), "values"),
    ("evaluate empty", lambda h: fc.evaluate([], [], []), "y_true"),
    ("dp empty", lambda h: metrics.demographic_parity_difference([], [], sensitive_features=[]), "y_true"),
    ("encode empty", lambda h: models.encode([]), "texts"),
    ("encode one string", lambda h: models.encode("a sentence"), "texts"),
    # mismatched lengths
    ("train_head y short", lambda h: training.train_head(X, Y[:-1]), "y_train"),
    ("train_head groups short", lambda h: training.train_head(X, Y, groups=G[:-1]), "groups"),
    ("train_fair_head groups short", lambda h: fc.train_fair_head(X, Y, G[:-1]), "groups"),
    ("train_mlp y_val short", lambda h: regularization.train_mlp(X, Y, X, Y[:-1]), "y_val"),
    ("evaluate y_pred short", lambda h: fc.evaluate(Y, Y[:-1], G), "y_pred"),
    ("FairData y_test short", lambda h: fc.FairData(X, Y, G, X, Y[:-1], G), "y_test"),
    ("eo groups short", lambda h: metrics.equalized_odds_difference(Y, Y, sensitive_features=SEX[:-1]),
     "sensitive_features"),
    # NaN
    ("train_head NaN X", lambda h: training.train_head(X_NAN, Y), "X_train"),
    ("train_fair_head NaN X", lambda h: fc.train_fair_head(X_NAN, Y, G), "X"),
    ("predict_head NaN X", lambda h: training.predict_head(h["head"], X_NAN), "X"),
    ("mlp predict NaN X", lambda h: regularization.predict_proba(h["mlp"], X_NAN), "X"),
    ("train_head NaN y", lambda h: training.train_head(X, np.where(Y == 1, np.nan, 0.0)), "y_train"),
    ("encode_groups NaN", lambda h: fc.encode_groups(["Male", np.nan, "Female"]), "values"),
    ("evaluate NaN groups", lambda h: fc.evaluate(Y, Y, np.where(G == 1, None, "Male")), "groups"),
    ("dp NaN y_pred", lambda h: metrics.demographic_parity_difference(Y, np.where(Y == 1, np.nan, 0.0),
                                                                      sensitive_features=SEX), "y_pred"),
    ("reweighing labels long", lambda h: preprocessing.reweighing(["a", "b"], [0, 1, 1]), "label"),
    ("confident_error_rate p short", lambda h: governance.confident_error_rate(Y, np.full(len(Y) - 1, 0.5)), "p"),
    ("reweighing NaN group", lambda h: preprocessing.reweighing(["a", None], [0, 1]), "group"),
    ("confident_error_rate NaN p", lambda h: governance.confident_error_rate(Y, np.where(Y == 1, np.nan, 0.2)), "p"),
    # one group
    ("embedding proxy one group", lambda h: proxies.embedding_proxy_auc(X, ["a"] * len(X)), "sensitive"),
    ("evaluate one group", lambda h: fc.evaluate(Y, Y, ["Male"] * len(Y)), "groups"),
    ("decision_report one group", lambda h: fc.decision_report(Y, Y, ["Male"] * len(Y)), "groups"),
    ("FairData one group", lambda h: fc.FairData(X, Y, G * 0, X, Y, G), "g_train"),
    ("mix_iterates one group", lambda h: fc.best_response_heads(X, Y, G * 0), "groups"),
    ("dp one group", lambda h: metrics.demographic_parity_difference(Y, Y, sensitive_features=["a"] * len(Y)),
     "sensitive_features"),
    # one class
    ("train_head one class", lambda h: training.train_head(X, np.zeros(len(X))), "y_train"),
    ("train_fair_head one class", lambda h: fc.train_fair_head(X, np.ones(len(X)), G), "y"),
    ("train_mlp one class", lambda h: regularization.train_mlp(X, np.zeros(len(X))), "y_train"),
    ("train_head labels 0/2", lambda h: training.train_head(X, Y * 2), "y_train"),
    # wrong width
    ("predict_head width", lambda h: training.predict_head(h["head"], X[:, :3]), "X"),
    ("mlp predict width", lambda h: regularization.predict_proba(h["mlp"], X[:, :3]), "X"),
    ("mlp accuracy width", lambda h: regularization.accuracy(h["mlp"], X[:, :3], Y), "X"),
    ("train_head X_val width", lambda h: training.train_head(X, Y, X_val=X[:, :3], y_val=Y), "X_val"),
    ("mixture predict width", lambda h: _mixture().predict(X[:, :3]), "X"),
    ("mixture predict NaN", lambda h: _mixture().predict(X_NAN), "X"),
    ("FairData X_test width", lambda h: fc.FairData(X, Y, G, X[:, :3], Y, G), "X_test"),
    ("train_head 1-D X", lambda h: training.train_head(X[:, 0], Y), "X_train"),
    # unknown names
    ("unknown model folder", lambda h: models.load_encoder("./no/such/model"), "model"),
    ("unknown constraint", lambda h: fc.train_fair_head(X, Y, G, constraint="parity"), "constraint"),
    ("unknown method", lambda h: fc.run_method(fc.FairData(X, Y, G, X, Y, G), "magic"), "method"),
    ("unknown optimizer", lambda h: regularization.train_mlp(X, Y, optimizer="rmsprop"), "optimizer"),
    # the head trainer's own arguments
    ("train_head epochs 0", lambda h: training.train_head(X, Y, epochs=0), "epochs"),
    ("train_head batch_size 0", lambda h: training.train_head(X, Y, batch_size=0), "batch_size"),
    ("train_head stratify without groups", lambda h: training.train_head(X, Y, stratify=True), "groups"),
    ("train_head negative l2", lambda h: training.train_head(X, Y, l2=-1.0), "l2"),
    ("train_head model width", lambda h: training.train_head(X[:, :3], Y, model=h["head"]), "X_train"),
    ("train_fair_head epochs 0", lambda h: fc.train_fair_head(X, Y, G, epochs=0), "epochs"),
    ("train_fair_head negative weight", lambda h: fc.train_fair_head(X, Y, G, sample_weight=-np.ones(len(Y))),
     "sample_weight"),
    ("train_fair_head sample_weight short", lambda h: fc.train_fair_head(X, Y, G, sample_weight=np.ones(3)),
     "sample_weight"),
    ("train_mlp negative l2", lambda h: regularization.train_mlp(X, Y, l2=-1.0), "l2"),
    ("train_mlp dropout 1", lambda h: regularization.train_mlp(X, Y, p=1.0), "p"),
    ("EarlyStopping patience 0", lambda h: regularization.EarlyStopping(patience=0), "patience"),
    ("mc_dropout T 0", lambda h: regularization.mc_dropout_predict(h["mlp"], X, T=0), "T"),
    # other helpers students call
    ("group_metrics y_prob short", lambda h: metrics.group_metrics(Y, Y, SEX, y_prob=np.full(3, 0.5)), "y_prob"),
    ("ece NaN y_prob", lambda h: metrics.expected_calibration_error(Y, np.where(Y == 1, np.nan, 0.5)), "y_prob"),
    ("dp head epsilon 0", lambda h: __import__("helpers.dp", fromlist=["dp"]).train_dp_head(X, Y, epsilon=0.0,
                                                                                           delta=1e-3), "epsilon"),
    ("attack member_labels short", lambda h: __import__("helpers.privacy", fromlist=["privacy"]).loss_threshold_attack(
        np.full(10, 0.5), Y[:9], np.full(10, 0.5), Y[:10]), "member_labels"),
    ("bootstrap_mean empty", lambda h: __import__("helpers.stats", fromlist=["stats"]).bootstrap_mean([]), "x"),
    ("train_wordpiece empty", lambda h: __import__("helpers.wordpiece", fromlist=["w"]).train_wordpiece([]), "lines"),
]


@pytest.mark.parametrize("call, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_value_error_naming_the_argument(heads, call, words):
    with pytest.raises(ValueError) as info:
        call(heads)
    assert words in str(info.value), str(info.value)


def test_validators_convert_good_input():
    """Good inputs pass through with the documented dtypes: booleans as 0/1, integer-valued float codes as ints."""
    assert validation.binary_labels([True, False]).tolist() == [1, 0]
    assert validation.binary_labels(np.array([[0.0], [1.0]])).dtype == np.int64
    assert validation.group_codes([1.0, 0.0, 1.0]).tolist() == [1, 0, 1]
    assert validation.features([[1, 2], [3, 4]]).dtype == np.float32
    assert validation.same_length(a=[1, 2], b=np.zeros(2), c=None) == 2
    assert fc.encode_groups(["b", "a", "b"])[0].tolist() == [1, 0, 1]
