"""Tests of helpers.explain on tiny models (a 2-layer BERT from a config, a linear bag-of-words model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from helpers import explain as ex
from helpers.models import load_tokenizer

TEXT = "A 25-year-old Black woman works 40 hours a week; highest education: 11th grade."
SHORT = "A 39-year-old white man, never married, husband."


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer()


@pytest.fixture(scope="module")
def bert(tok):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=2)
    model = BertForSequenceClassification(cfg)
    with torch.no_grad():  # a sharper classifier head, so attributions are not all ~1e-7
        model.classifier.weight.mul_(30.0)
    return ex.BatchedPredictor(model, tok, device="cpu", batch_size=8, max_length=64, class_names=["<=50K", ">50K"])


class BagOfWords(torch.nn.Module):
    """logit_1 - logit_0 = b + sum of w[token] over the tokens present: a linear model with known weights."""

    def __init__(self, weights: torch.Tensor, bias: float = 0.1) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(weights.clone())
        self.b = bias

    def forward(self, input_ids, attention_mask):
        s = (self.w[input_ids] * attention_mask).sum(1) + self.b
        return torch.stack([torch.zeros_like(s), s], 1)


@pytest.fixture(scope="module")
def linear(tok):
    g = torch.Generator().manual_seed(1)
    w = torch.randn(tok.vocab_size, generator=g, dtype=torch.float64) * 0.5
    w[tok.all_special_ids] = 0.0  # [CLS], [SEP], [PAD], [MASK]: no evidence
    model = BagOfWords(w).double()
    return ex.BatchedPredictor(model, tok, device="cpu", batch_size=64, max_length=64, class_names=["no", "yes"])


def true_contributions(m: ex.MaskedText, predictor) -> np.ndarray:
    """Each word's weight contribution: the sum of w over its tokens."""
    w = predictor.model.w.detach().numpy()
    ids = m.input_ids.numpy()
    word = m.word_of_token.numpy()
    return np.array([w[ids[word == j]].sum() for j in range(m.n_words)])


def test_batched_equals_one_at_a_time(bert):
    texts = [TEXT, SHORT, "Hello.", TEXT + " Born in the United States.", "a b c d e f"]
    a = bert(texts)
    b = bert.predict_one_at_a_time(texts)
    assert a.shape == (5, 2)
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-6)


def test_token_id_perturbation_equals_retokenized_strings(bert, tok):
    keep = np.random.default_rng(0).random((30, 15)) > 0.5
    for hide in ("mask", "remove"):
        m = bert.masked(TEXT, hide=hide)
        assert m.n_words == 15
        ids, lengths = m.token_ids(keep)
        ref = tok(m.texts(keep))["input_ids"]
        assert [ids[i, : lengths[i]].tolist() for i in range(30)] == ref
        np.testing.assert_allclose(m.probabilities(keep), bert(m.texts(keep)), atol=1e-5)


def test_words_match_lime_indexed_string():
    from lime.lime_text import IndexedString

    assert [w for w in ex._WORD.findall(TEXT)] == IndexedString(TEXT, bow=False).inverse_vocab


def test_fast_lime_reproduces_lime_text_explainer(bert):
    m = bert.masked(TEXT)
    fast = ex.lime_explain(m, num_samples=300, seed=3)
    slow, _ = ex.lime_explain_strings(bert, TEXT, num_samples=300, seed=3)
    np.testing.assert_allclose(fast.weights, slow.weights, atol=1e-6 * np.abs(slow.weights).max() + 1e-9)
    again = ex.lime_explain(m, num_samples=300, seed=3)
    np.testing.assert_array_equal(fast.weights, again.weights)
    other = ex.lime_explain(m, num_samples=300, seed=4)
    assert not np.array_equal(fast.weights, other.weights)


def test_shap_efficiency(bert):
    m = bert.masked(TEXT)
    s = ex.shap_explain(m, max_evals=200)
    assert s.weights.sum() == pytest.approx(s.prediction - s.base_value, abs=1e-6)
    assert abs(s.prediction - s.base_value) > 1e-4  # the check is not vacuous


def test_exact_shapley_efficiency_and_glove_game(bert):
    # the glove game: player 0 holds a left glove, players 1, 2 right gloves -> (2/3, 1/6, 1/6)
    v = np.array([1.0 if (mask & 1) and (mask & 6) else 0.0 for mask in range(8)])
    np.testing.assert_allclose(ex.shapley_from_values(v, 3), [2 / 3, 1 / 6, 1 / 6], atol=1e-12)
    e = ex.exact_shapley(bert.masked(SHORT))
    assert e.weights.sum() == pytest.approx(e.prediction - e.base_value, abs=1e-6)


def test_linear_model_shapley_lime_shap_recover_weights(linear):
    m = linear.masked(TEXT, output="log_odds", label="yes")
    truth = true_contributions(m, linear)
    assert np.ptp(truth) > 1.0  # words differ clearly ("A" and "a" share a token, so a tie is allowed)
    # SHAP on an additive model: exact Shapley = Owen = the weight contributions
    small = linear.masked(SHORT, output="log_odds", label="yes")
    np.testing.assert_allclose(ex.exact_shapley(small).weights, true_contributions(small, linear), atol=1e-9)
    np.testing.assert_allclose(ex.shap_explain(m, max_evals=500).weights, truth, atol=1e-9)
    # LIME: ridge on the binary masks recovers the ranking
    lime = ex.lime_explain(m, num_samples=1000, seed=0)
    from scipy.stats import spearmanr

    assert spearmanr(lime.weights, truth).statistic > 0.98
    assert list(lime.order()[:3]) == list(np.argsort(-truth)[:3])


def test_deletion_curve_true_order_beats_random(linear):
    m = linear.masked(TEXT, label="yes")
    truth = true_contributions(m, linear)
    curve = ex.deletion_curve(m, np.argsort(-truth))
    assert curve[0] == pytest.approx(m.full())
    assert len(curve) == m.n_words + 1
    rand = ex.random_deletion_curve(m, repeats=20, seed=0)
    assert ex.aopc(curve) > ex.aopc(rand) + 0.05
    assert ex.aopc([1.0, 0.5, 0.0]) == pytest.approx(0.5)


def test_agreement_stability_and_importance(bert):
    m = bert.masked(TEXT)
    a = ex.exact_shapley(bert.masked(SHORT))
    agree = ex.rank_agreement(a, a)
    assert agree == pytest.approx({"spearman": 1.0, "kendall": 1.0, "top_k_overlap": 1.0})
    stab = ex.lime_stability(m, seeds=(0, 1), num_samples=200)
    runs = [ex.lime_explain(m, num_samples=200, seed=s) for s in (0, 1)]
    assert stab["seeds"] == 2
    assert stab["spearman"] == pytest.approx(spearmanr(runs[0].weights, runs[1].weights).statistic)
    table = ex.token_importance([a], ex.GENDER_WORDS)
    assert set(table["word"]) == {"man", "husband"}
    assert table["mean_abs"].iloc[0] == pytest.approx(np.abs(a.weights[[a.tokens.index(table["word"].iloc[0])]]).max())


def test_bad_input_errors(bert, tok):
    with pytest.raises(ValueError, match="empty"):
        bert.masked("")
    with pytest.raises(ValueError, match="no words"):
        bert.masked(" ;. ")
    with pytest.raises(ValueError, match="max_length"):
        bert.masked("word " * 100)
    long_text = "word " * 100  # the predictor cuts it like training does: first max_length - 1 tokens + [SEP]
    cut = bert.tokenize([long_text])[0]
    assert len(cut) == bert.max_length and cut[-1] == tok.sep_token_id and cut[0] == tok.cls_token_id
    np.testing.assert_allclose(bert([long_text]), bert([tok.decode(cut[1:-1])]), atol=1e-6)
    with pytest.raises(ValueError, match="Unknown class"):
        bert.masked(TEXT, label=">60K")
    with pytest.raises(ValueError, match="Unknown class"):
        bert.class_index(2)
    with pytest.raises(ValueError, match="list"):
        bert(TEXT)
    with pytest.raises(ValueError, match="shape"):
        bert.masked(TEXT).token_ids(np.ones((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="2\\^"):
        ex.exact_shapley(bert.masked(TEXT), max_words=10)
    with pytest.raises(ValueError, match="permutation"):
        ex.deletion_curve(bert.masked(SHORT), [0, 0, 1])


def test_word_importance_per_text_by_hand():
    a = ex.Attribution(tokens=["A", "Man", "works", "man"], weights=[0.1, -0.4, 0.3, 0.2], method="m", label="x")
    b = ex.Attribution(tokens=["no", "gender"], weights=[0.5, 0.5], method="m", label="x")
    got = ex.word_importance_per_text([a, b], ["man", "woman"])
    assert got[0] == pytest.approx(0.3) and np.isnan(got[1])


def test_int8_predictor_is_an_int8_copy(bert, tok):
    """cpu_precision="int8" swaps every nn.Linear for an int8 dynamic one (one weight scale per row) in a copy; the
    fp32 model is untouched."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    texts = [TEXT, SHORT, "Hello."]
    before = bert(texts)
    q = bert.at_precision("int8")
    assert q.cpu_precision == "int8" and q.class_names == bert.class_names and q.fp32_model is bert.model
    n_linear = sum(isinstance(mod, torch.nn.Linear) for mod in bert.model.modules())
    assert sum(isinstance(mod, Int8Linear) for mod in q.model.modules()) == n_linear > 0
    assert all(mod.weight().qscheme() == torch.per_channel_affine for mod in q.model.modules()
               if isinstance(mod, Int8Linear))
    assert not any(isinstance(mod, Int8Linear) for mod in bert.model.modules())
    # the embeddings are shared, not copied (memory); the Linear weights are the copy's own int8 tensors
    emb, emb_q = bert.model.get_input_embeddings().weight, q.model.get_input_embeddings().weight
    assert emb_q.data_ptr() == emb.data_ptr() and emb_q.dtype == torch.float32
    np.testing.assert_array_equal(bert(texts), before)
    # a small random model: int8 rounding moves its probabilities by far less than 0.01
    np.testing.assert_allclose(q(texts), before, atol=1e-2)
    assert q.masked(SHORT, label=1).n_words == bert.masked(SHORT, label=1).n_words
    for precision in ("int8", "bf16"):
        with pytest.raises(ValueError, match="CPU"):
            ex.BatchedPredictor(bert.model, tok, device=torch.device("cuda"), cpu_precision=precision)
    with pytest.raises(ValueError, match="cpu_precision must be one of"):
        bert.at_precision("fp16")


def test_bf16_predictor_runs_the_linear_layers_in_bf16_and_leaves_the_model_fp32(bert):
    """Under cpu_precision="bf16" every nn.Linear returns bf16 and every LayerNorm receives and returns fp32 (the
    residual sums stay fp32, as the docstring says); the probabilities differ from fp32 (bf16 really ran) by less
    than 0.02 on this small model, and the shared fp32 model keeps fp32 weights and outputs."""
    texts = [TEXT, SHORT, "Hello."]
    fp32 = bert(texts)
    b = bert.at_precision("bf16")
    seen: dict[str, set] = {"Linear": set(), "LayerNorm": set()}
    hooks = [mod.register_forward_hook(lambda mod, inp, out: seen[type(mod).__name__].add((inp[0].dtype, out.dtype)))
             for mod in b.model.modules() if type(mod).__name__ in seen]
    try:
        got = b(texts)
    finally:
        for h in hooks:
            h.remove()
    assert {o for _, o in seen["Linear"]} == {torch.bfloat16} and seen["LayerNorm"] == {(torch.float32, torch.float32)}
    assert all(prm.dtype == torch.float32 for prm in bert.model.parameters())
    np.testing.assert_array_equal(bert(texts), fp32)
    dp = np.abs(got - fp32).max()
    assert 0 < dp < 0.02
    assert got.dtype == np.float32 and np.allclose(got.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(b.predict_one_at_a_time(texts), got, atol=1e-2)


def test_cpu_has_bf16_reads_the_cpu_flags(monkeypatch):
    import pathlib

    def fake(flags):
        return lambda self, *a, **k: f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\n"

    monkeypatch.setattr(pathlib.Path, "read_text", fake("avx2 avx512f avx512_bf16"))
    assert ex.cpu_has_bf16()
    monkeypatch.setattr(pathlib.Path, "read_text", fake("avx2 amx_bf16 amx_tile"))
    assert ex.cpu_has_bf16()
    monkeypatch.setattr(pathlib.Path, "read_text", fake("avx2 avx512f avx512_vnni"))
    assert not ex.cpu_has_bf16()

    def missing(self, *a, **k):
        raise OSError("no /proc here")

    monkeypatch.setattr(pathlib.Path, "read_text", missing)
    assert not ex.cpu_has_bf16()


def test_time_breakdown_and_compare_predictors(bert):
    m = bert.masked(SHORT, label=">50K")
    table = ex.time_breakdown(m, num_samples=30, max_evals=20)
    assert (table["seconds"] > 0).all() and len(table) == 7
    total_shap = table["seconds"].iloc[-1]
    assert table["seconds"].iloc[-3] + table["seconds"].iloc[-2] == pytest.approx(total_shap)
    same = ex.compare_predictors(bert, {"itself": bert, "int8": bert.at_precision("int8")}, [SHORT, TEXT], label=1,
                                 num_samples=30, max_evals=20, progress=False)
    assert same.shape == (4, 6) and list(same["candidate"]) == ["itself", "itself", "int8", "int8"]
    itself = same[same["candidate"] == "itself"]
    np.testing.assert_array_equal(itself["max_abs_dp"], 0.0)  # a predictor against itself: identical
    np.testing.assert_allclose(itself[["lime_spearman", "shap_spearman"]].to_numpy(), 1.0)
    # the reference is explained once, so its seconds are shared by both candidates
    np.testing.assert_array_equal(itself["reference_s"].to_numpy(), same[same["candidate"] == "int8"]["reference_s"])
    assert (same[same["candidate"] == "int8"]["max_abs_dp"] > 0).all()


def test_precision_summary_and_its_sentences_by_hand():
    import pandas as pd

    table = pd.DataFrame({
        "candidate": ["fast-good", "fast-good", "fast-bad", "fast-bad", "slow", "slow"],
        "max_abs_dp": [0.01, 0.02, 0.01, 0.05, 0.0, 0.0],
        "lime_spearman": [0.99, 0.96, 0.99, 0.90, np.nan, 1.0],
        "shap_spearman": [0.97, 0.95, 0.98, 0.99, 1.0, 1.0],
        "reference_s": [2.0, 2.0, 2.0, 2.0, 2.0, 2.0],
        "candidate_s": [1.0, 1.0, 0.5, 0.5, 3.0, 5.0]})
    s = ex.precision_summary(table)
    assert list(s.index) == ["fast-good", "fast-bad", "slow"]
    assert s.loc["fast-good", "speedup"] == pytest.approx(2.0) and s.loc["slow", "speedup"] == pytest.approx(0.5)
    assert s.loc["fast-good", "within_tolerance"]  # 0.02 and 0.95 are on the boundary: allowed
    assert not s.loc["fast-bad", "within_tolerance"] and s.loc["fast-bad", "lime_spearman_min"] == pytest.approx(0.90)
    assert s.loc["slow", "within_tolerance"] and s.loc["slow", "rankings_compared"] == 1
    text = ex.describe_precisions(s, seed_spearman=0.7)
    assert "**fast-good** explains **2.0×** as fast as fp32" in text and "**slow** is **slower** than fp32" in text
    assert text.count("within the tolerance") == 2 and text.count("outside the tolerance") == 1
    # fast-bad missed both criteria (0.05 > 0.02; LIME 0.900 < 0.95), and the sentence says which
    assert ("outside the tolerance (|Δp| ≤ 0.02, Spearman ≥ 0.95): probabilities moved by more than 0.02 and "
            "LIME's Spearman correlation fell below 0.95") in text and "is 0.900 (LIME)" in text
    assert "worst of 2 sentences" in text and "Spearman 0.70 on average" in text
    assert "on the 1 of 2 sentences" in text
    assert "On this machine and these sentences fast-good is a fair trade" in text and "flip a sentence" in text
    slow_only = ex.describe_precisions(s.loc[["slow"]])
    assert "No lower precision is both within the tolerance and faster" in slow_only and "flip" not in slow_only
    with pytest.raises(ValueError, match="max_dp"):
        ex.precision_summary(table, max_dp=2)


def test_time_call_reports_the_spread_of_warm_calls():
    import time

    pauses = iter([0.0, 0.03, 0.01, 0.02])  # cold, then three warm calls
    t = ex.time_call(lambda: time.sleep(next(pauses)), repeats=3)
    assert t["warm_min_s"] == pytest.approx(0.01, abs=0.008) and t["warm_max_s"] == pytest.approx(0.03, abs=0.008)
    assert t["warm_min_s"] <= t["warm_s"] <= t["warm_max_s"] and t["warm_s"] == pytest.approx(0.02, abs=0.008)
    assert t["warm_calls"] == 3 and np.isnan(ex.time_call(lambda: None, repeats=0)["warm_max_s"])


def test_describe_token_path_says_faster_only_beyond_the_spread():
    def timing(lo, hi, calls=2):
        return {"cold_s": hi, "warm_s": (lo + hi) / 2, "warm_min_s": lo, "warm_max_s": hi, "warm_calls": calls}

    kw = {"tokenising_s": 0.031, "forward_s": 2.157, "n": 300, "device": "cpu"}
    slower = ex.describe_token_path(timing(2.36, 2.41), timing(2.20, 2.30), **kw)
    assert "the token-id path was slower; the difference (+0.135 s) exceeds the whole tokenising time" in slower
    faster = ex.describe_token_path(timing(2.20, 2.22), timing(2.23, 2.25), **kw)
    assert "the token-id path was faster." in faster  # by 0.03 s, within what tokenising costs
    same = ex.describe_token_path(timing(2.25, 2.30), timing(2.24, 2.28), **kw)
    assert "no difference beyond the spread of repeated calls." in same
    assert f"({0.031 / (0.031 + 2.157):.1%} of the string path)" in same and "the forward pass dominates" in same
    once = ex.describe_token_path(timing(2.0, 2.0, calls=1), timing(2.2, 2.2, calls=1), **kw)
    assert "no spread to judge" in once and "faster" not in once
    gpu_like = ex.describe_token_path(timing(0.1, 0.1), timing(0.3, 0.3), tokenising_s=0.2, forward_s=0.1, n=300,
                                      device="cuda")
    assert "the token-id path was faster." in gpu_like and "tokenising is the larger part" in gpu_like
