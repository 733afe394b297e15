"""Tests for helpers.robustness: the gendered swap, the greedy attack and its bookkeeping, on toy predictors."""

import numpy as np
import pytest

from helpers import robustness as R

SENTENCES = [
    "A 39-year-old white man, never married, works 40 hours a week in an administrative clerical job.",
    "He said HIS wife and her Husband met Mr Smith; she is a Woman, himself a BOY.",
    "Household role: husband. Born in the United States. No capital gain or loss.",
    "mAn and MaN stay as they are; human, manager and woman's are not the word man.",
    "",
]


@pytest.mark.parametrize("text", SENTENCES)
def test_swap_is_an_involution(text):
    assert R.swap_gendered_words(R.swap_gendered_words(text)) == text


def test_swap_examples_and_case():
    assert R.swap_gendered_words("A 39-year-old man. Household role: husband.") == \
        "A 39-year-old woman. Household role: wife."
    assert R.swap_gendered_words("He met HER Husband") == "She met HIM Wife"
    assert R.swap_gendered_words("mAn") == "mAn"
    assert R.swap_gendered_words("human manager") == "human manager"


def test_swap_keeps_untouched_tokens():
    table = {w for pair in R.GENDER_PAIRS for w in pair}
    for text in SENTENCES:
        out = R.swap_gendered_words(text)
        a, b = R.words(text), R.words(out)
        assert len(a) == len(b)
        for (_, _, wa), (_, _, wb) in zip(a, b):
            if wa.lower() not in table or not (wa.islower() or wa.isupper() or wa.istitle()):
                assert wa == wb
            else:
                assert wb.lower() in table and wb.lower() != wa.lower()
        # everything between words (digits, punctuation, spaces) is identical
        assert R._WORD.sub("", text) == R._WORD.sub("", out)


def test_swap_pairs_must_be_disjoint():
    with pytest.raises(ValueError):
        R.swap_gendered_words("x", pairs=[("a", "b"), ("b", "c")])


def _toy_predict(weights):
    """P(y=1) = sigmoid(bias + sum of word weights): a bag-of-words toy with known behaviour."""
    def predict(texts):
        out = []
        for t in texts:
            s = 0.5 + sum(weights.get(w.lower(), 0.0) for _, _, w in R.words(t))
            out.append(1 / (1 + np.exp(-s)))
        return np.array(out)
    return predict


def test_counterfactual_gap_hand_computed():
    predict = _toy_predict({"man": 1.0, "woman": -1.0})
    texts = ["a man", "a woman", "no gender here"]
    got = R.counterfactual_gap(predict, texts)
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    assert got["n"] == 2
    assert got["mean_abs_dp"] == pytest.approx(s(1.5) - s(-0.5))
    assert got["flip_rate"] == 1.0
    assert R.counterfactual_gap(_toy_predict({}), texts)["flip_rate"] == 0.0
    with pytest.raises(ValueError):
        R.counterfactual_gap(predict, ["no gender"])


def test_counterfactual_table_per_text_values():
    predict = _toy_predict({"man": 1.0, "woman": -1.0})
    s = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    t = R.counterfactual_table(predict, ["a man", "no gender here", "a woman"])
    assert t["text"].tolist() == ["a man", "a woman"] and t["swapped"].tolist() == ["a woman", "a man"]
    assert np.allclose(t["p"], [s(1.5), s(-0.5)]) and np.allclose(t["p_swapped"], [s(-0.5), s(1.5)])
    assert t["flipped"].tolist() == [1, 1] and np.allclose(t["abs_dp"], s(1.5) - s(-0.5))
    small = R.counterfactual_table(_toy_predict({"man": 0.1}), ["a man", "a woman"])
    assert small["flipped"].tolist() == [0, 0]  # both stay above 0.5
    assert R.counterfactual_summary(t)["flip_rate"] == 1.0 and R.counterfactual_summary(small)["n"] == 2


WEIGHTS = {"job": 0.8, "company": 0.7, "hours": 0.6, "works": 0.5, "education": 0.4, "degree": 0.3,
           "position": -1.0, "post": -1.5, "firm": -1.5, "hrs": -1.0, "schooling": -1.0, "labors": -1.0}
TEXTS = ["She works 40 hours in a job for a company; highest education: bachelor's degree.",
         "Works full hours at a Company job, degree in education.",
         "Nothing here to change at all."]


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5])
def test_attack_respects_budget_and_list(k):
    predict = _toy_predict(WEIGHTS)
    for text in TEXTS:
        r = R.greedy_substitution_attack(predict, text, label=1, k=k)
        assert r.n_edits <= k
        positions = [i for i, _, _ in r.edits]
        assert len(set(positions)) == len(positions)
        orig = R.words(text)
        for i, old, new in r.edits:
            assert orig[i][2] == old
            assert new.lower() in R.SUBSTITUTIONS[old.lower()]
        assert r.adversarial == R.replace_words(text, {i: new for i, _, new in r.edits})
        assert r.p_adversarial == pytest.approx(predict([r.adversarial])[0])
        assert r.success == (r.p_adversarial < 0.5)
        if k == 0:
            assert r.adversarial == text and not r.success


def test_attack_succeeds_on_a_fragile_toy_and_curve_is_monotone():
    predict = _toy_predict(WEIGHTS)
    # logit 3.8; job -> post and company -> firm remove 2.3 + 2.2, so two edits flip both sentences
    res = R.attack_many(predict, TEXTS[:2], [1, 1], k=3, progress=False)
    curve = R.success_curve(res, ks=(0, 1, 2, 3))
    assert curve[0] == 0.0
    assert all(curve[a] <= curve[b] for a, b in [(0, 1), (1, 2), (2, 3)])
    assert curve[3] == 1.0
    assert R.robust_accuracy(res, 3) == 0.0
    # an already-wrong example is skipped, not counted as a success
    skipped = R.greedy_substitution_attack(predict, TEXTS[0], label=0, k=3)
    assert skipped.skipped and not skipped.success and skipped.n_edits == 0


def test_attack_uses_a_given_importance_and_validates_it():
    predict = _toy_predict(WEIGHTS)
    text = TEXTS[0]
    n = len(R.words(text))
    scores = np.zeros(n)
    scores[[i for i, (_, _, w) in enumerate(R.words(text)) if w == "degree"]] = 10.0  # visit "degree" first
    r = R.greedy_substitution_attack(predict, text, 1, k=1, importance=lambda t: scores)
    assert r.edits[0][1] == "degree"
    with pytest.raises(ValueError):
        R.greedy_substitution_attack(predict, text, 1, k=1, importance=lambda t: [1.0])
    with pytest.raises(ValueError):
        R.greedy_substitution_attack(predict, text, 2)


def test_leave_one_out_matches_definition():
    predict = _toy_predict(WEIGHTS)
    text = "works job"
    imp = R.leave_one_out_importance(predict, text)
    p = predict([text, "job", "works"])
    assert imp == pytest.approx([p[0] - p[1], p[0] - p[2]])


def test_augmentation_and_random_substitutions_are_seeded_and_listed():
    a = R.random_substitutions(TEXTS[0], n_edits=2, seed=3)
    assert a == R.random_substitutions(TEXTS[0], n_edits=2, seed=3)
    changed = [(x, y) for (_, _, x), (_, _, y) in zip(R.words(TEXTS[0]), R.words(a)) if x != y]
    assert 1 <= len(changed) <= 2 or "is employed" in a or "privately owned" in a
    res = R.attack_many(_toy_predict(WEIGHTS), TEXTS[:2], [1, 1], k=3, progress=False)
    texts, labels = R.adversarial_augmentation(TEXTS[:2], [1, 0], res, n_random=2, seed=0)
    assert len(texts) == 2 + sum(r.success for r in res) + 4
    assert labels.tolist()[:2] == [1, 0] and labels.tolist()[-2:] == [1, 0]


def test_robust_correct_counts_each_sentence_once():
    ok = R.AttackResult("a", "a", 1, 0.9, 0.8)  # attacked, not flipped
    flipped_2 = R.AttackResult("b", "b'", 1, 0.9, 0.4, edits=[(0, "x", "y"), (1, "u", "v")], success=True)
    wrong = R.AttackResult("c", "c", 1, 0.3, 0.3, skipped=True)  # already misclassified
    res = [ok, flipped_2, wrong]
    assert R.robust_correct(res, 1).tolist() == [1.0, 1.0, 0.0]  # two edits are over a budget of one
    assert R.robust_correct(res, 2).tolist() == [1.0, 0.0, 0.0]
    assert R.robust_accuracy(res, 2) == pytest.approx(1 / 3)
