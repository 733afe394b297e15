"""LIME (Ribeiro et al. 2016) and SHAP's Partition explainer (Lundberg & Lee 2017) on a :class:`MaskedText`,
and the stock string-level wrappers of both libraries."""

from __future__ import annotations

import numpy as np

from .core import Attribution, BatchedPredictor, MaskedText, _attribution

# --------------------------------------------------------------------------------------------
# LIME
# --------------------------------------------------------------------------------------------


def lime_kernel(distances: np.ndarray, kernel_width: float = 25.0) -> np.ndarray:
    """LimeTextExplainer's proximity weights :math:`\\pi(d) = \\sqrt{\\exp(-d^2 / w^2)}` (w = 25)."""
    d = np.asarray(distances, dtype=np.float64)
    return np.sqrt(np.exp(-(d**2) / kernel_width**2))


def lime_samples(n_words: int, num_samples: int, seed: int | np.random.RandomState = 0) -> tuple[np.ndarray, np.ndarray]:
    """LimeTextExplainer's neighbourhood: binary masks (num_samples, W) and cosine distances x 100.

    Row 0 is the sentence itself; row i >= 1 hides ``k ~ U{1..W}`` words chosen without replacement,
    with the same random draws as ``lime.lime_text.LimeTextExplainer`` for the same seed.
    """
    from sklearn.utils import check_random_state

    if num_samples < 2:
        raise ValueError(f"LIME needs at least 2 samples, got {num_samples}.")
    rs = check_random_state(seed)
    sizes = rs.randint(1, n_words + 1, num_samples - 1)
    data = np.ones((num_samples, n_words))
    features = range(n_words)
    for i, k in enumerate(sizes, start=1):
        data[i, rs.choice(features, k, replace=False)] = 0
    # cosine distance to the all-ones row: 1 - sqrt(kept / W) (sklearn gives 1 for an all-zero row)
    distances = (1.0 - np.sqrt(data.sum(1) / n_words)) * 100
    return data, distances


def lime_explain(m: MaskedText, *, num_samples: int = 1000, num_features: int | None = None, seed: int = 0,
                 kernel_width: float = 25.0) -> Attribution:
    """LIME on token ids: LimeTextExplainer's sampling and kernel, fitted by ``LimeBase``.

    LIME fits a weighted linear surrogate :math:`g(z) = w_0 + w^\\top z` to the model's scores on
    the binary masks ``z`` (Ribeiro et al. 2016, Eq. 1-2), with weights :math:`\\pi(z)` from
    :func:`lime_kernel`, by ridge regression (alpha = 1). Weights of features not selected are 0.
    """
    from lime.lime_base import LimeBase
    from sklearn.utils import check_random_state

    rs = check_random_state(seed)
    data, distances = lime_samples(m.n_words, num_samples, rs)
    scores = m(data.astype(bool))[:, None]  # (N, 1): the probability (or log-odds) of the class explained
    k = m.n_words if num_features is None else int(num_features)
    base = LimeBase(lambda d: lime_kernel(d, kernel_width), random_state=rs)
    intercept, exp, score, local_pred = base.explain_instance_with_data(data, scores, distances, 0, k)
    weights = np.zeros(m.n_words)
    for j, w in exp:
        weights[j] = w
    return _attribution(m, weights, "LIME", intercept=float(intercept), r2=float(score), num_samples=num_samples,
                        seed=seed)


def lime_explain_strings(predictor: BatchedPredictor, text: str, *, label: int | str | None = None,
                         num_samples: int = 1000, num_features: int | None = None, seed: int = 0):
    """The stock ``LimeTextExplainer`` (string perturbations, one tokenizer call per sample).

    Configured to build the same texts as :func:`lime_explain` with ``hide="mask"``
    (``bow=False``, each hidden word -> the mask token). Returns ``(Attribution, lime Explanation)``.
    """
    from lime.lime_text import LimeTextExplainer

    m = MaskedText(predictor, text, label=label, hide="mask")
    explainer = LimeTextExplainer(class_names=predictor.class_names, bow=False,
                                  mask_string=predictor.tokenizer.mask_token, random_state=seed)
    k = m.n_words if num_features is None else int(num_features)
    exp = explainer.explain_instance(text, predictor, labels=(m.label_index,), num_features=k, num_samples=num_samples)
    weights = np.zeros(m.n_words)
    for j, w in exp.local_exp[m.label_index]:
        weights[j] = w
    return _attribution(m, weights, "LIME (strings)", num_samples=num_samples, seed=seed), exp


# --------------------------------------------------------------------------------------------
# SHAP
# --------------------------------------------------------------------------------------------


def contiguous_tree(n: int) -> np.ndarray:
    """A balanced binary hierarchy over ``n`` words in order, as a scipy linkage matrix (n-1, 4).

    Rows ``[left, right, height, size]``; leaves are 0..n-1 and row ``r`` creates node ``n + r``.
    SHAP's Partition explainer computes Owen values for this hierarchy: neighbouring words
    are grouped before distant ones, as ``shap.maskers.Text`` does.
    """
    if n < 1:
        raise ValueError("A hierarchy needs at least one word.")
    rows: list[list[float]] = []

    def build(lo: int, hi: int) -> tuple[int, int, int]:  # returns (node id, size, height)
        if hi - lo == 1:
            return lo, 1, 0
        mid = (lo + hi + 1) // 2
        left, ls, lh = build(lo, mid)
        right, rs, rh = build(mid, hi)
        h = max(lh, rh) + 1
        rows.append([left, right, float(h), ls + rs])
        return n + len(rows) - 1, ls + rs, h

    build(0, n)
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


class WordMasker:
    """A shap masker whose "masked input" is the boolean word mask itself (no strings).

    Partition's model call then receives a batch of masks (N, W) and :class:`MaskedText` turns it
    into token ids on the device. ``default_batch_size`` replaces the Text masker's 5 (shap uses it
    when ``batch_size="auto"``), so hundreds of coalitions go through the model together.
    """

    def __init__(self, n_words: int, batch_size: int = 512) -> None:
        self.shape = (1, n_words)
        self.clustering = contiguous_tree(n_words)
        self.default_batch_size = batch_size
        self.immutable_outputs = True

    def __call__(self, mask, *args):
        return np.asarray(mask, dtype=bool).reshape(1, -1).copy()


def shap_explain(m: MaskedText, *, max_evals: int = 500, batch_size: int = 512, seed: int = 0) -> Attribution:
    """SHAP Partition (Owen) values of each word, with token-id perturbation.

    Efficiency holds: ``weights.sum() == prediction - base_value`` (up to float error).
    """
    import shap

    from ..config import seeded

    if max_evals < 3:
        raise ValueError(f"max_evals must be at least 3, got {max_evals}.")
    _wait_for_warm_up()
    masker = WordMasker(m.n_words, batch_size)
    explainer = shap.explainers.Partition(lambda keep: m(keep), masker)
    if m.n_words == 1:  # one word: its value is the whole difference
        return _attribution(m, [m.full() - m.empty()], "SHAP Partition", max_evals=max_evals)
    with seeded(seed):
        exp = explainer(np.ones((1, m.n_words)), max_evals=max_evals, batch_size=batch_size, silent=True)
    return _attribution(m, np.asarray(exp.values).reshape(-1), "SHAP Partition", max_evals=max_evals)


def shap_explain_strings(predictor: BatchedPredictor, text: str, *, label: int | str | None = None,
                         max_evals: int = 500, batch_size: int | str = "auto"):
    """The stock ``shap.Explainer`` with ``shap.maskers.Text`` on strings (subword tokens).

    Returns ``(Attribution over the masker's tokens, shap Explanation for shap.plots.text)``.
    ``batch_size="auto"`` keeps shap's own default of 5 texts per model call (slow); pass a number
    to batch more.
    """
    import shap

    m = MaskedText(predictor, text, label=label)
    masker = shap.maskers.Text(predictor.tokenizer)
    explainer = shap.Explainer(lambda x: predictor([str(t) for t in x]), masker, output_names=predictor.class_names)
    exp = explainer([text], max_evals=max_evals, batch_size=batch_size, silent=True)
    row = exp[0, :, m.label_index]
    tokens = [str(t) for t in row.data]
    attr = Attribution(tokens=tokens, weights=np.asarray(row.values), method="SHAP Text masker", label=m.label,
                       prediction=float(m.probabilities(np.ones((1, m.n_words), dtype=bool))[0, m.label_index]),
                       base_value=float(row.base_values), text=text, info={"max_evals": max_evals})
    return attr, exp


# --------------------------------------------------------------------------------------------
# Warm start
# --------------------------------------------------------------------------------------------

_WARM: dict[str, object] = {}


def warm_up(*, background: bool = True):
    """Do the one-off work of the first explanation now: import shap and lime, compile shap's numba helpers.

    The first SHAP Partition call in a fresh process compiles shap's ``lower_credit`` and ``MaskedModel``
    helpers with numba, which costs seconds; LIME's first call imports scikit-learn's linear models. Called
    early (``background=True``: in a daemon thread, while the notebook does other work), the student's first
    explanation then costs only the model's forward passes. Runs once per process; returns the thread (or
    ``None`` when run in the foreground or already done). :func:`shap_explain` waits for a running warm-up.
    """
    import threading

    if "thread" in _WARM:
        return None

    def work() -> None:
        import shap
        from lime.lime_base import LimeBase  # noqa: F401
        from sklearn.linear_model import Ridge  # noqa: F401

        toy = shap.explainers.Partition(lambda keep: np.asarray(keep, dtype=float).sum(1), WordMasker(4, 64))
        toy(np.ones((1, 4)), max_evals=20, batch_size=64, silent=True)

    if not background:
        _WARM["thread"] = None
        work()
        return None
    thread = threading.Thread(target=work, name="explain-warm-up", daemon=True)
    _WARM["thread"] = thread
    thread.start()
    return thread


def _wait_for_warm_up() -> None:
    thread = _WARM.get("thread")
    if thread is not None:
        thread.join()
