"""Tests for helpers.pretraining: masking statistics, WEAT against a hand-computed toy, determinism, fill-mask."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import pretraining as pt
from helpers.data import load_adult

MASK, VOCAB, SPECIALS = 4, 50, (0, 1, 2, 3, 4)


def _padded_batch(seed: int, rows: int = 300, width: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, VOCAB, (rows, width), generator=g)
    for i, n in enumerate(torch.randint(6, width + 1, (rows,), generator=g).tolist()):
        ids[i, 0], ids[i, n - 1] = 2, 3
        ids[i, n:] = 0
    return ids


def _mask(ids, seed):
    return pt.mask_tokens(ids, special_ids=SPECIALS, mask_token_id=MASK, vocab_size=VOCAB,
                          generator=torch.Generator().manual_seed(seed))


# --- masking ----------------------------------------------------------------------------------


def test_mask_tokens_proportions_over_many_draws():
    selected = masked = randomised = unchanged = candidates = 0
    for seed in range(30):
        ids = _padded_batch(seed)
        inputs, labels = _mask(ids, seed)
        sel = labels != -100
        candidates += int((~torch.isin(ids, torch.tensor(SPECIALS))).sum())
        selected += int(sel.sum())
        masked += int((sel & (inputs == MASK)).sum())
        unchanged += int((sel & (inputs == ids)).sum())
        randomised += int((sel & (inputs != MASK) & (inputs != ids)).sum())
    # ~90k candidates, ~13.5k selected: binomial sd of the shares is < 0.004
    assert selected / candidates == pytest.approx(0.15, abs=0.005)
    assert masked / selected == pytest.approx(0.80, abs=0.015)
    n_normal = VOCAB - len(SPECIALS)  # a random token equals the original with probability 1/n_normal
    assert randomised / selected == pytest.approx(0.10 * (1 - 1 / n_normal), abs=0.01)
    assert unchanged / selected == pytest.approx(0.10 + 0.10 / n_normal, abs=0.01)


def test_mask_tokens_never_touches_specials_and_labels_are_minus_100_elsewhere():
    ids = _padded_batch(3)
    inputs, labels = _mask(ids, 5)
    special = torch.isin(ids, torch.tensor(SPECIALS))
    assert bool((inputs[special] == ids[special]).all())
    assert bool((labels[special] == -100).all())
    sel = labels != -100
    assert bool((labels[sel] == ids[sel]).all())  # labels hold the original token
    assert bool((labels[~sel] == -100).all())
    assert bool((inputs[~sel] == ids[~sel]).all())  # unselected tokens are never corrupted
    assert not bool(torch.isin(inputs[sel & (inputs != MASK)], torch.tensor(SPECIALS)).any())  # random != special
    assert ids.equal(_padded_batch(3))  # input not modified in place


def test_mask_tokens_is_seeded_and_validates():
    ids = _padded_batch(0)
    a, b = _mask(ids, 11), _mask(ids, 11)
    assert a[0].equal(b[0]) and a[1].equal(b[1])
    assert not _mask(ids, 12)[1].equal(a[1])
    with pytest.raises(ValueError):
        pt.mask_tokens(ids[0], special_ids=SPECIALS, mask_token_id=MASK, vocab_size=VOCAB)


# --- WEAT ---------------------------------------------------------------------------------------


def test_weat_matches_hand_computed_toy():
    # A = e1, B = e2.  s(w) = cos(w, e1) - cos(w, e2):
    # x1=(1,0): 1;  x2=(1,1): 0;  y1=(0,1): -1;  y2=(2,2): 0.
    X = np.array([[1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0, 1.0], [2.0, 2.0]])
    A, B = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    np.testing.assert_allclose(pt.weat_association(np.vstack([X, Y]), A, B), [1, 0, -1, 0], atol=1e-12)
    # d = (mean(1,0) - mean(-1,0)) / sd([1,0,-1,0], ddof=1) = 1 / sqrt(2/3) = sqrt(1.5)
    assert pt.weat_effect_size(X, Y, A, B) == pytest.approx(math.sqrt(1.5), abs=1e-12)
    # statistic 2; the 6 equal splits of {1,0,-1,0} give 2,0,2,-2,0,-2: two reach >= 2 -> p = 1/3
    res = pt.weat(X, Y, A, B, n_permutations=100)
    assert res.exact and res.n_partitions == 6
    assert res.statistic == pytest.approx(2.0)
    assert res.p_value == pytest.approx(1 / 3)
    # swapping the targets flips the sign of d; scaling a vector changes nothing (cosine)
    assert pt.weat_effect_size(Y, X, A, B) == pytest.approx(-math.sqrt(1.5))
    assert pt.weat_effect_size(3 * X, Y, A, 5 * B) == pytest.approx(math.sqrt(1.5))


def test_weat_sampled_p_value_agrees_with_exact_enumeration():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(7, 3)) + [0.4, 0, 0], rng.normal(size=(7, 3))
    A, B = rng.normal(size=(5, 3)) + [1, 0, 0], rng.normal(size=(5, 3))
    exact = pt.weat(X, Y, A, B, n_permutations=10_000)  # C(14, 7) = 3432 partitions
    sampled = pt.weat(X, Y, A, B, n_permutations=3000, seed=1)
    assert exact.exact and not sampled.exact
    assert sampled.p_value == pytest.approx(exact.p_value, abs=0.03)
    with pytest.raises(ValueError):
        pt.weat_effect_size(X, Y, A, np.zeros((2, 3)))


def test_format_p_value_never_rounds_to_zero():
    X, Y = np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[0.0, 1.0], [2.0, 2.0]])
    A, B = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    res = pt.weat(X, Y, A, B, n_permutations=100)  # exact, p = 2/6 (hand toy above)
    assert pt.format_p_value(res.p_value, draws=res.n_partitions, exact=True) == "0.33"
    # strongly separated targets: no drawn partition reaches the observed statistic, p = 1/(m + 1)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(12, 3)) + [5, 0, 0], rng.normal(size=(12, 3)) - [5, 0, 0]
    A, B = np.array([[1.0, 0.0, 0.0]]), np.array([[-1.0, 0.0, 0.0]])
    res = pt.weat(X, Y, A, B, n_permutations=999, seed=0)  # C(24, 12) partitions: sampled
    assert not res.exact and res.p_value == pytest.approx(1 / 1000)
    assert pt.format_p_value(res.p_value, draws=999, exact=False) == "= 1/1,000"
    assert pt.format_p_value(1 / 6, draws=6, exact=True) == "= 1/6"
    assert pt.format_p_value(0.0123, draws=5000, exact=False) == "0.012"
    for bad in (dict(p=0.0, draws=10, exact=True), dict(p=0.5, draws=0, exact=True)):
        with pytest.raises(ValueError):
            pt.format_p_value(**bad)


def test_seat_sentences():
    out = pt.seat_sentences(["rose", "tulip"], templates=("This is {w}.", "{w} is here."))
    assert out == ["This is rose.", "Rose is here.", "This is tulip.", "Tulip is here."]


# --- corpus, tokenizer, model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small():
    df = load_adult("train").head(300)
    corpus = pt.build_corpus(df)
    train, held = pt.split_corpus(corpus, 0.1, seed=0)
    tok = pt.train_wordpiece(train["text"].tolist(), vocab_size=600)
    return df, corpus, train, held, tok


def _library_tokenizer(lines, vocab_size, min_frequency):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(lines, trainer=trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(pt.SPECIAL_TOKENS),
        show_progress=False))
    return tok


@pytest.mark.parametrize("lines, min_frequency", [
    (["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3, 2),  # Sennrich et al. 2016's example
    (["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3, 4),
    (["banana bandana"] * 7 + ["cabana"] * 3 + ["nab"] * 2 + ["ban"] * 11, 2),
])
def test_wordpiece_vocab_equals_the_tokenizers_trainer_where_it_has_no_ties(lines, min_frequency):
    # On these corpora the library gives the same vocabulary on every call (checked: 20 calls, one set).
    library = [_library_tokenizer(lines, 60, min_frequency) for _ in range(20)]
    assert all(set(t.get_vocab()) == set(library[0].get_vocab()) for t in library)
    ours = pt.train_wordpiece(lines, vocab_size=60, min_frequency=min_frequency)
    assert set(ours.get_vocab()) == set(library[0].get_vocab())
    text = "lowest newer banana cabal"
    assert ours.tokenize(text) == library[0].encode(text, add_special_tokens=False).tokens


def test_wordpiece_vocab_stops_at_vocab_size_and_validates():
    words = {"abcdefghij": 9, "klmnopqrst": 5, "uvwxyz": 3, "abcklm": 2}
    full = pt.wordpiece_vocab(words, vocab_size=200)
    assert len(pt.wordpiece_vocab(words, vocab_size=len(full) - 3)) == len(full) - 3
    assert "abcdefghij" in full and full[:5] == list(pt.SPECIAL_TOKENS)
    with pytest.raises(ValueError, match="vocab_size"):
        pt.wordpiece_vocab(words, vocab_size=10)


_SECTION_01 = """
import json, sys
sys.path.insert(0, {root!r})
from helpers import pretraining as pt
from helpers.config import set_threads, seed_everything
from helpers.data import load_adult, subsample
seed_everything(0); set_threads()
adult = subsample(load_adult("all"), 1500, seed=0)
train, held = pt.split_corpus(pt.build_corpus(adult), 0.05, seed=0)
tok = pt.train_wordpiece(train["text"].tolist(), vocab_size=1000)
ids = pt.tokenize_lines(tok, train["text"].tolist(), max_length=96)
hs = pt.masked_set(pt.tokenize_lines(tok, held["text"].tolist(), max_length=96), tok, seed=1)
model = pt.make_model(tok, layers=1, hidden=32, heads=2, seed=0)
run = pt.pretrain(model, tok, ids, hs, steps=20, batch_size=16, lr=3e-3, eval_every=10, seed=0, device="cpu",
                  progress=False)
table, r, ci = pt.bias_absorption(model, tok, pt.pronoun_rates(train["text"].tolist()), n_boot=200, seed=0)
print(json.dumps({{"vocab": tok.get_vocab(), "history": run.history.to_dict(orient="list"), "r": r,
                  "ci": list(ci), "table": table.to_dict(orient="list")}}, sort_keys=True))
"""


def test_notebook_01_section_gives_identical_figures_in_two_processes():
    # Notebook 01 at smoke sizes: tokenizer training, 20 pretraining steps with the notebook's thread count, and
    # the bias-absorption probe, run in two fresh processes (hash seeds differ between processes).
    import json
    import subprocess
    import sys

    from helpers.config import ROOT

    code = _SECTION_01.format(root=str(ROOT))
    a, b = (json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                      cwd=ROOT).stdout) for _ in range(2))
    assert len(a["vocab"]) > 100 and len(a["history"]["step"]) == 3 and np.isfinite(a["r"])
    assert a == b


def test_corpus_pronoun_rates_equal_census_rates(small):
    df, corpus, *_ = small
    assert len(corpus) == 2 * len(df)
    rates = pt.pronoun_rates(corpus["text"].tolist())
    census = df.groupby("occupation", observed=True)["sex"].apply(lambda s: (s == "Female").mean())
    pd.testing.assert_series_equal(rates["she_rate"], census.rename("she_rate").rename_axis("occupation"),
                                   check_index_type=False, check_categorical=False)
    with pytest.raises(ValueError):
        pt.pronoun_rates(["No pronoun here."])


def test_split_is_by_record(small):
    _, corpus, train, held, _ = small
    assert set(train["record"]).isdisjoint(held["record"])
    assert len(train) + len(held) == len(corpus)


def test_tokenizer_keeps_pronouns_whole_and_adds_cls_sep(small):
    *_, tok = small
    enc = tok("[MASK] works in a sales job.")["input_ids"]
    assert enc[0] == tok.cls_token_id and enc[-1] == tok.sep_token_id and enc[1] == tok.mask_token_id
    assert tok.tokenize("She he") == ["she", "he"]


def _run(small, seed):
    _, _, train, held, tok = small
    ids = pt.tokenize_lines(tok, train["text"].tolist())
    hs = pt.masked_set(pt.tokenize_lines(tok, held["text"].tolist()), tok, seed=1)
    model = pt.make_model(tok, layers=1, hidden=32, heads=2, seed=seed)
    run = pt.pretrain(model, tok, ids, hs, steps=6, batch_size=16, lr=3e-3, eval_every=3, seed=seed,
                      device="cpu", progress=False)
    return model, run, ids, hs


def test_pretraining_is_deterministic_on_cpu(small):
    from helpers.config import single_thread_on_cpu

    with single_thread_on_cpu(torch.device("cpu")):  # one thread for bit-identical runs, restored afterwards
        _, a, ids, hs = _run(small, 0)
        _, b, _, _ = _run(small, 0)
        _, c, _, _ = _run(small, 1)
    pd.testing.assert_frame_equal(a.history, b.history)
    assert list(a.history["step"]) == [0, 3, 6]
    assert np.isfinite(a.history[["heldout_loss", "heldout_perplexity"]].to_numpy()).all()
    np.testing.assert_allclose(a.history["heldout_perplexity"], np.exp(a.history["heldout_loss"]))
    assert not np.allclose(a.history["heldout_loss"].iloc[1:], c.history["heldout_loss"].iloc[1:])
    assert a.tokens_per_s > 0 and a.precision == "float32"


def test_unigram_baseline_by_hand():
    labels = torch.tensor([[7, -100, 5, 7], [-100, 6, 7, -100]])
    data = pt.MaskedSet([(labels.clamp(min=0), torch.ones_like(labels), labels)])
    train = [[2, 7, 7, 5, 3], [2, 7, 6, 3]]  # 7 is the most frequent ordinary token
    out = pt.unigram_baseline(train, data, vocab_size=8, special_ids=SPECIALS)
    assert out["top_token_id"] == 7
    assert out["accuracy"] == pytest.approx(3 / 5)
    # add-one smoothing over the 3 ordinary ids 5, 6, 7: counts 1, 1, 3 -> p = 2/8, 2/8, 4/8
    want = -np.mean(np.log([4 / 8, 2 / 8, 2 / 8, 4 / 8, 4 / 8]))
    assert out["loss"] == pytest.approx(want)


def test_fill_mask_distribution_sums_to_one(small):
    model, *_ = _run(small, 0)
    tok = small[-1]
    p = pt.mask_distribution(model, tok, "[MASK] works in a sales job.")
    assert p.shape == (len(tok),)
    assert (p >= 0).all() and p.sum() == pytest.approx(1.0, abs=1e-9)
    probs = pt.word_probs(model, tok, "[MASK] works in a sales job.", ["she", "he"])
    assert 0 < probs["she"] < 1 and 0 < probs["he"] < 1
    top = pt.top_fills(model, tok, "[MASK] works in a sales job.", k=3)
    assert list(top["probability"]) == sorted(top["probability"], reverse=True)
    with pytest.raises(ValueError):
        pt.mask_distribution(model, tok, "No mask here.")
    with pytest.raises(ValueError):
        pt.word_probs(model, tok, "[MASK] works.", ["xylophonist"])


def test_pearson_bootstrap_matches_scipy():
    from scipy.stats import pearsonr

    rng = np.random.default_rng(0)
    x = rng.random(14)
    y = 0.8 * x + 0.1 * rng.normal(size=14)
    r, (lo, hi) = pt.pearson_bootstrap(x, y, n_boot=2000, seed=0)
    assert r == pytest.approx(pearsonr(x, y).statistic)
    assert lo < r < hi <= 1
    with pytest.raises(ValueError):
        pt.pearson_bootstrap([1, 1, 1], [1, 2, 3])


def test_fit_by_frequency_splits_at_the_share_of_sentences():
    """Hand example: n = 60, 30, 9, 1 of 100 sentences; at 10 % the first two are frequent; gaps by hand."""
    table = pd.DataFrame({"corpus_she_rate": [0.1, 0.5, 0.9, 0.0], "model_she_ratio": [0.2, 0.45, 0.5, 0.3],
                          "n": [60, 30, 9, 1]}, index=list("wxyz"))
    fit = pt.fit_by_frequency(table, min_share=0.10)
    assert fit["frequent"].tolist() == [True, True, False, False]
    assert np.allclose(fit["gap"], [0.1, 0.05, 0.4, 0.3])
    assert pt.fit_by_frequency(table, min_share=0.09)["frequent"].tolist() == [True, True, True, False]  # n >= 9
    with pytest.raises(ValueError, match="column"):
        pt.fit_by_frequency(table.drop(columns="n"))
