"""Robustness measurements on a text classifier: counterfactual word swaps and a word-substitution attack.

* Counterfactual token fairness (Garg et al. 2019, "Counterfactual fairness in text classification through
  robustness", AIES): swap gendered words (he <-> she, husband <-> wife, man <-> woman, ...) and count how
  often the decision changes. A counterfactually fair model gives f(x) = f(swap(x)).
* A greedy word-substitution attack (in the style of Jin et al. 2020, "Is BERT really robust?", TextFooler):
  visit words in order of importance and replace them with a meaning-preserving alternative from a small
  documented list, at most ``k`` edits, until the decision flips.
* Adversarial data augmentation (Goodfellow et al. 2015; for text: Jin et al. 2020, Sec. 5): add attacked
  training sentences with their true labels and retrain.

A *predictor* here is any callable ``predict(texts: list[str]) -> np.ndarray`` of shape ``(n,)`` giving
P(y = 1); :func:`predictor_from_head` and :func:`predictor_from_classifier` build one from the workbook's models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import validation as check

Predictor = Callable[[Sequence[str]], np.ndarray]

#: Gendered word pairs swapped by :func:`swap_gendered_words` (Garg et al. 2019 use a similar list of
#: identity terms). Each word appears in exactly one pair, so the swap is an involution. English "her" is
#: both the object form (him) and the possessive (his); we pair him <-> her and his <-> hers, which is
#: ungrammatical for possessive "her" - a known limit of word-level counterfactuals (Garg et al. 2019, Sec. 5).
GENDER_PAIRS: tuple[tuple[str, str], ...] = (
    ("he", "she"), ("him", "her"), ("his", "hers"), ("himself", "herself"),
    ("man", "woman"), ("men", "women"), ("male", "female"), ("males", "females"),
    ("husband", "wife"), ("husbands", "wives"), ("boy", "girl"), ("boys", "girls"),
    ("father", "mother"), ("fathers", "mothers"), ("son", "daughter"), ("sons", "daughters"),
    ("brother", "sister"), ("brothers", "sisters"), ("uncle", "aunt"), ("nephew", "niece"),
    ("boyfriend", "girlfriend"), ("gentleman", "lady"), ("gentlemen", "ladies"),
    ("king", "queen"), ("mr", "mrs"), ("sir", "madam"), ("grandfather", "grandmother"),
)  # fmt: skip

#: Meaning-preserving single-word substitutions for the attack and the defence, chosen for the sentences
#: :func:`helpers.data.serialize` writes (synonyms a human reader would accept as the same record). Keys are
#: lower case; the replacement copies the capitalisation of the original word.
SUBSTITUTIONS: dict[str, tuple[str, ...]] = {
    "works": ("labors", "is employed"),
    "job": ("position", "post"),
    "company": ("firm", "business"),
    "worker": ("employee",),
    "week": ("wk",),
    "hours": ("hrs",),
    "highest": ("top", "best"),
    "education": ("schooling", "qualification"),
    "degree": ("qualification",),
    "diploma": ("certificate",),
    "household": ("home", "family"),
    "role": ("position", "status"),
    "born": ("native",),
    "government": ("administration",),
    "federal": ("national",),
    "private": ("privately owned",),
    "administrative": ("admin",),
    "clerical": ("office",),
    "technical": ("tech",),
    "managerial": ("management",),
    "professional": ("expert",),
    "specialty": ("speciality",),
    "service": ("services",),
    "married": ("wed",),
    "unmarried": ("unwed",),
    "capital": ("investment",),
    "gain": ("profit",),
    "loss": ("deficit",),
    "no": ("zero",),
    "child": ("offspring",),
}

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def words(text: str) -> list[tuple[int, int, str]]:
    """The words of ``text`` as ``(start, end, word)`` character spans (letters and one apostrophe).

    Everything between words (spaces, digits, punctuation) is left alone by the swaps and the attack.
    """
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def match_case(template: str, word: str) -> str:
    """``word`` in the capitalisation of ``template``: lower, Title or UPPER (anything else: unchanged)."""
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper() and template[1:].islower():
        return word[:1].upper() + word[1:]
    if template.isupper():  # one capital letter, e.g. "I": Title case
        return word[:1].upper() + word[1:]
    return word


def _swap_table(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for a, b in pairs:
        a, b = a.lower(), b.lower()
        if a == b or a in table or b in table:
            raise ValueError(f"Word pairs must be disjoint for the swap to be an involution; {a!r}/{b!r} repeats.")
        table[a], table[b] = b, a
    return table


def _case_kind(w: str) -> str | None:
    if w.islower():
        return "lower"
    if w.isupper():
        return "upper"
    if w[:1].isupper() and w[1:].islower():
        return "title"
    return None


def swap_gendered_words(text: str, pairs: Sequence[tuple[str, str]] = GENDER_PAIRS) -> str:
    """Replace every gendered word by its counterpart from ``pairs`` (default :data:`GENDER_PAIRS`).

    Case-preserving for lower, Title and UPPER words; words in any other casing (e.g. "mAn") are left as they
    are, so that ``swap(swap(x)) == x`` for every ``x`` (an involution). All other characters are kept.
    Example: "A 39-year-old man. Household role: husband." -> "A 39-year-old woman. Household role: wife."
    """
    if not isinstance(text, str):
        raise ValueError(f"swap_gendered_words takes one string, got {type(text).__name__}.")
    table = _swap_table(pairs)
    out, last = [], 0
    for start, end, w in words(text):
        target = table.get(w.lower())
        kind = _case_kind(w)
        if target is None or kind is None:
            continue
        new = {"lower": target, "upper": target.upper(), "title": target[:1].upper() + target[1:]}[kind]
        out.append(text[last:start])
        out.append(new)
        last = end
    out.append(text[last:])
    return "".join(out)


def _one_per_text(predict: Predictor, texts: list[str]) -> np.ndarray:
    """``predict(texts)`` as a float array ``(n,)``, or a ValueError when it does not give one number per text."""
    p = np.asarray(predict(texts), dtype=float).reshape(-1)
    if p.shape != (len(texts),):
        raise ValueError(f"predict must return one probability per text; got shape {p.shape} for {len(texts)} texts.")
    return p


def counterfactual_table(predict: Predictor, texts: Sequence[str], *, threshold: float = 0.5,
                         pairs: Sequence[tuple[str, str]] = GENDER_PAIRS) -> "pd.DataFrame":  # noqa: F821
    """Per text: the counterfactual swap and what it does to ``predict`` (Garg et al. 2019).

    Only the n texts that contain a gendered word are kept (texts without one cannot change). Columns:
    ``text``, ``swapped`` (x' = swap(x)), ``p`` = p(x), ``p_swapped`` = p(x'), ``flipped`` =
    1[ 1[p >= t] != 1[p_swapped >= t] ] and ``abs_dp`` = |p - p_swapped|; shape (n, 6).
    """
    import pandas as pd

    texts = check.texts(texts, "texts")
    swapped = [swap_gendered_words(t, pairs) for t in texts]
    keep = [i for i, (a, b) in enumerate(zip(texts, swapped)) if a != b]
    if not keep:
        raise ValueError("None of the texts contains a gendered word from the list, so nothing can be swapped.")
    p = _one_per_text(predict, [texts[i] for i in keep])
    q = _one_per_text(predict, [swapped[i] for i in keep])
    return pd.DataFrame({"text": [texts[i] for i in keep], "swapped": [swapped[i] for i in keep], "p": p,
                         "p_swapped": q, "flipped": ((p >= threshold) != (q >= threshold)).astype(int),
                         "abs_dp": np.abs(p - q)})


def counterfactual_summary(table) -> dict[str, float]:
    """``{"flip_rate", "mean_abs_dp", "max_abs_dp", "n"}`` of a :func:`counterfactual_table`:
    flip_rate = (1/n) sum_i flipped_i and mean_abs_dp = (1/n) sum_i |p(x_i) - p(x'_i)|."""
    return {"flip_rate": float(table["flipped"].mean()), "mean_abs_dp": float(table["abs_dp"].mean()),
            "max_abs_dp": float(table["abs_dp"].max()), "n": len(table)}


def counterfactual_gap(predict: Predictor, texts: Sequence[str], *, threshold: float = 0.5,
                       pairs: Sequence[tuple[str, str]] = GENDER_PAIRS) -> dict[str, float]:
    """Counterfactual token fairness of ``predict`` on ``texts`` (Garg et al. 2019).

    With x' = swap(x):  flip_rate = (1/n) sum_i 1[ 1[p(x_i) >= t] != 1[p(x'_i) >= t] ]  and
    mean_abs_dp = (1/n) sum_i |p(x_i) - p(x'_i)|, over the n texts that contain a gendered word
    (texts without one cannot change). Returns ``{"flip_rate", "mean_abs_dp", "max_abs_dp", "n"}``;
    :func:`counterfactual_table` keeps the per-text values (for intervals).
    """
    return counterfactual_summary(counterfactual_table(predict, texts, threshold=threshold, pairs=pairs))


# ----------------------------------------------------------------------------------------------
# Word-substitution attack
# ----------------------------------------------------------------------------------------------

def substitution_positions(text: str, substitutions: Mapping[str, Sequence[str]] = SUBSTITUTIONS) -> list[int]:
    """Indices (into :func:`words`) of the words that have at least one listed substitution."""
    return [i for i, (_, _, w) in enumerate(words(text)) if w.lower() in substitutions]


def replace_words(text: str, replacements: Mapping[int, str]) -> str:
    """``text`` with word number i (as counted by :func:`words` on ``text``) replaced by ``replacements[i]``.

    The new words copy the capitalisation of the old ones; indices always refer to the ORIGINAL text, so a
    two-word replacement ("works" -> "is employed") does not shift later indices.
    """
    spans = words(text)
    out, last = [], 0
    for i in sorted(replacements):
        if not 0 <= i < len(spans):
            raise ValueError(f"Word index {i} out of range: the text has {len(spans)} words.")
        start, end, old = spans[i]
        out += [text[last:start], match_case(old, replacements[i])]
        last = end
    out.append(text[last:])
    return "".join(out)


def leave_one_out_importance(predict: Predictor, text: str, positions: Sequence[int] | None = None) -> np.ndarray:
    """Leave-one-out word importance: I_i = p(x) - p(x without word i), shape ``(n_words,)``.

    Positive I_i: word i pushes towards class 1. Only ``positions`` are computed (others are 0), which keeps
    the cost at len(positions) + 1 forward passes (Li et al. 2016, "Understanding neural networks through
    representation erasure").
    """
    spans = words(text)
    positions = list(range(len(spans))) if positions is None else list(positions)
    out = np.zeros(len(spans))
    if not positions:
        return out
    variants = [text]
    for i in positions:
        start, end, _ = spans[i]
        variants.append((text[:start] + text[end:]).replace("  ", " "))
    p = np.asarray(predict(variants), dtype=float).reshape(-1)
    out[positions] = p[0] - p[1:]
    return out


@dataclass
class AttackResult:
    """One attacked sentence: the edits made (word index, old word, new word) in order, and the outcome."""

    original: str
    adversarial: str
    label: int
    p_original: float
    p_adversarial: float
    edits: list[tuple[int, str, str]] = field(default_factory=list)
    success: bool = False
    skipped: bool = False  # already misclassified before any edit: not attacked

    @property
    def n_edits(self) -> int:
        return len(self.edits)


def greedy_substitution_attack(predict: Predictor, text: str, label: int, *, k: int = 3,
                               substitutions: Mapping[str, Sequence[str]] = SUBSTITUTIONS,
                               importance: Callable[[str], Sequence[float]] | None = None,
                               threshold: float = 0.5) -> AttackResult:
    """Greedy word-substitution attack with a budget of at most ``k`` edited words.

    1. Rank the substitutable words by importance for the true class (``importance(text)`` -> one score per
       word of :func:`words`, positive = towards class 1; default :func:`leave_one_out_importance`; any
       attribution method, e.g. from ``helpers.explain``, can be passed).
    2. Visit them in that order; for each, try every listed substitution and keep the one that lowers
       P(true class) most, if it lowers it at all (an edit that does not help is not spent).
    3. Stop when the decision flips (success) or after ``k`` edits. Words are only ever replaced by their
       listed substitutions, and each word position is edited at most once.
    """
    _check_attack(label, k)
    subs = {w.lower(): tuple(v) for w, v in substitutions.items()}

    def p_true(ts: Sequence[str]) -> np.ndarray:
        p = np.asarray(predict(list(ts)), dtype=float).reshape(-1)
        return p if label == 1 else 1.0 - p

    p0 = float(np.asarray(predict([text]), dtype=float).reshape(-1)[0])
    result = AttackResult(text, text, label, p0, p0)
    if (p0 >= threshold) != bool(label):
        result.skipped = True
        return result
    positions = substitution_positions(text, subs)
    if not positions or k == 0:
        return result
    scores = np.asarray(importance(text) if importance is not None else
                        leave_one_out_importance(predict, text, positions), dtype=float)
    if scores.shape != (len(words(text)),):
        raise ValueError(f"importance(text) must give one score per word ({len(words(text))}), got {scores.shape}.")
    order = sorted(positions, key=lambda i: -(scores[i] if label == 1 else -scores[i]))
    chosen = _greedy_edits(p_true, text, order, subs, k, result,
                           lambda pt: ((pt if label == 1 else 1.0 - pt) >= threshold) != bool(label))
    result.adversarial = replace_words(text, chosen)
    result.p_adversarial = float(np.asarray(predict([result.adversarial]), dtype=float).reshape(-1)[0])
    result.success = (result.p_adversarial >= threshold) != bool(label)
    return result


def _check_attack(label: int, k: int) -> None:
    if label not in (0, 1):
        raise ValueError(f"label must be 0 or 1, got {label!r}.")
    if not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"The budget k must be a non-negative integer, got {k!r}.")


def _greedy_edits(p_true, text: str, order: list[int], subs: dict, k: int, result: "AttackResult",
                  flipped: Callable[[float], bool]) -> dict[int, str]:
    """Step 2-3 of :func:`greedy_substitution_attack`: visit the positions in ``order``, keep the substitution that
    lowers P(true class) most (if any does), record it in ``result.edits``; stop after ``k`` edits or when
    ``flipped(P(true class))``. Returns position -> replacement."""
    spans = words(text)
    chosen: dict[int, str] = {}
    current_p = float(p_true([text])[0])
    for i in order:
        if len(chosen) >= k:
            break
        old = spans[i][2]
        options = subs[old.lower()]
        probs = p_true([replace_words(text, {**chosen, i: s}) for s in options])
        best = int(np.argmin(probs))
        if probs[best] >= current_p:
            continue  # no listed substitution lowers P(true class): do not spend an edit here
        chosen[i], current_p = options[best], float(probs[best])
        result.edits.append((i, old, match_case(old, options[best])))
        if flipped(current_p):
            break  # decision flipped
    return chosen


def attack_many(predict: Predictor, texts: Sequence[str], labels: Sequence[int], *, k: int = 3,
                substitutions: Mapping[str, Sequence[str]] = SUBSTITUTIONS,
                importance: Callable[[str], Sequence[float]] | None = None, threshold: float = 0.5,
                progress: bool = True) -> list[AttackResult]:
    """:func:`greedy_substitution_attack` on every (text, label); a tqdm bar shows progress."""
    from .progress import tqdm

    texts = check.texts(texts, "texts")
    labels = [int(y) for y in labels]
    if len(labels) != len(texts):
        raise ValueError(f"Got {len(texts)} texts but {len(labels)} labels.")
    return [greedy_substitution_attack(predict, t, y, k=k, substitutions=substitutions, importance=importance,
                                       threshold=threshold)
            for t, y in tqdm(list(zip(texts, labels)), desc="attacking", disable=not progress, leave=False)]


def success_curve(results: Sequence[AttackResult], ks: Sequence[int] = (1, 2, 3)) -> dict[int, float]:
    """Attack success rate at each budget k: flipped with <= k edits / sentences correctly classified at first.

    The greedy path does not depend on the budget (it stops at the first flip), so one run with the largest k
    gives the whole curve. Sentences the model already got wrong are excluded (nothing to attack).
    """
    attacked = [r for r in results if not r.skipped]
    if not attacked:
        raise ValueError("No sentence was correctly classified, so the success rate is undefined.")
    return {int(k): float(np.mean([r.success and r.n_edits <= k for r in attacked])) for k in ks}


def robust_correct(results: Sequence[AttackResult], k: int) -> np.ndarray:
    """Per sentence (shape (n,), 0/1): correct before the attack and still correct after <= k edits (the units of
    :func:`robust_accuracy`, for a paired comparison of two models attacked on the same sentences)."""
    if not results:
        raise ValueError("No attack results.")
    return np.array([not r.skipped and not (r.success and r.n_edits <= k) for r in results], dtype=float)


def robust_accuracy(results: Sequence[AttackResult], k: int) -> float:
    """Accuracy under attack with budget k: correct before the attack and still correct after <= k edits."""
    return float(robust_correct(results, k).mean())


def random_substitutions(text: str, *, n_edits: int = 2, seed: int = 0,
                         substitutions: Mapping[str, Sequence[str]] = SUBSTITUTIONS) -> str:
    """``text`` with up to ``n_edits`` randomly chosen substitutable words replaced by a random listed synonym."""
    rng = np.random.default_rng(seed)
    subs = {w.lower(): tuple(v) for w, v in substitutions.items()}
    positions = substitution_positions(text, subs)
    chosen = sorted(int(c) for c in rng.permutation(positions)[:n_edits]) if positions else []
    spans = words(text)
    return replace_words(text, {i: subs[spans[i][2].lower()][int(rng.integers(len(subs[spans[i][2].lower()])))]
                                for i in chosen})


def adversarial_augmentation(texts: Sequence[str], labels: Sequence[int], results: Sequence[AttackResult] = (), *,
                             n_random: int = 1, n_edits: int = 2, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Training set for the defence: the originals, every successful adversarial sentence from ``results``
    (with its TRUE label), and ``n_random`` randomly substituted copies of each original.

    Returns ``(texts, labels)`` - the model is then retrained on them (adversarial training by data
    augmentation; Jin et al. 2020, Sec. 5).
    """
    texts = check.texts(texts, "texts")
    labels = np.asarray(labels, dtype=int).reshape(-1)
    if len(labels) != len(texts):
        raise ValueError(f"Got {len(texts)} texts but {len(labels)} labels.")
    out_t, out_y = list(texts), list(labels)
    for r in results:
        if r.success:
            out_t.append(r.adversarial)
            out_y.append(r.label)
    for c in range(n_random):
        for j, (t, y) in enumerate(zip(texts, labels)):
            out_t.append(random_substitutions(t, n_edits=n_edits, seed=seed * 1_000_003 + c * 100_003 + j))
            out_y.append(int(y))
    return out_t, np.asarray(out_y, dtype=int)


# ----------------------------------------------------------------------------------------------
# Predictors from the workbook's models
# ----------------------------------------------------------------------------------------------

def predictor_from_head(head, encoder=None, tokenizer=None, *, batch_size: int | None = None) -> Predictor:
    """``texts -> P(y=1)`` for a head trained on mean-pooled MiniLM embeddings (``training.train_head``).

    The head sits on the encoder as one classifier (:func:`helpers.models.encoder_with_head`); nothing is
    cached on disk (attacked sentences are new every time).
    """
    from . import models

    encoder = encoder if encoder is not None else models.load_encoder()
    tokenizer = tokenizer if tokenizer is not None else models.load_tokenizer()
    return predictor_from_classifier(models.encoder_with_head(encoder, head), tokenizer, batch_size=batch_size)


def predictor_from_classifier(model, tokenizer, *, batch_size: int | None = None) -> Predictor:
    """``texts -> P(y=1)`` for a fine-tuned sequence classifier (``training.fine_tune``)."""
    from . import training

    def predict(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(training.predict_proba(model, tokenizer, list(texts), batch_size=batch_size))[:, 1]

    return predict
