"""Explanations of a text classifier: LIME, SHAP, exact Shapley values, and checks of faithfulness.

Both LIME and SHAP explain one prediction by running the model on thousands of copies of the
sentence with some words hidden. Re-tokenizing thousands of near-identical strings makes the
tokenizer, not the model, the bottleneck, so this module tokenizes the sentence **once**, maps
every word to its token span, and builds the perturbed inputs as token ids on the model's device
(:class:`MaskedText`). Every explainer here sees the same value function

.. math:: v(z) = f_c\\big(h(x, z)\\big),\\qquad z \\in \\{0, 1\\}^W,

where ``W`` is the number of words, ``z_j = 1`` keeps word ``j``, ``h`` hides the other words
(``hide="mask"``: each hidden word becomes one ``[MASK]`` token, the same text that
``LimeTextExplainer(bow=False, mask_string=tokenizer.mask_token)`` builds; ``hide="remove"``:
its tokens are deleted) and ``f_c`` is the probability (or log-odds) of class ``c``.

* :class:`BatchedPredictor` - ``list[str] -> probabilities``, batched, sorted by length,
  ``inference_mode``, bf16/fp16 autocast on CUDA; usable directly by ``lime`` and ``shap``.
* :func:`lime_explain` - LIME (Ribeiro et al. 2016, KDD, "Why should I trust you?") with the exact
  sampling, cosine distance and kernel of ``lime.lime_text.LimeTextExplainer``, fitted by
  ``lime.lime_base.LimeBase``; :func:`lime_explain_strings` is the stock string-level wrapper.
* :func:`shap_explain` - SHAP's Partition explainer (Owen values for a hierarchy of the words, not Shapley
  values; SHAP: Lundberg & Lee 2017, NeurIPS) with
  a word masker that feeds token ids to the model; :func:`shap_explain_strings` wraps the stock
  ``shap.maskers.Text`` (for shap's own JavaScript text plot).
* :func:`exact_shapley` - Shapley values (Shapley 1953) by enumerating all ``2^W`` subsets: the
  ground truth for short inputs (implemented in :mod:`helpers.shapley`, with exact Owen values, Kernel
  SHAP and phrase-level games; importable from here too).
* :func:`deletion_curve`, :func:`aopc`, :func:`rank_agreement`, :func:`lime_stability`,
  :func:`token_importance` - faithfulness, agreement, stability and global (bias) summaries.

Every explainer returns an :class:`Attribution`: one weight per word, so methods compare directly.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .shapley import all_masks, exact_shapley, shapley_from_values  # noqa: F401  (part of this module's API)

#: Words whose attribution the bias analysis of notebook 06 follows (sex and household role).
GENDER_WORDS: tuple[str, ...] = ("man", "woman", "husband", "wife", "he", "she", "his", "her", "male", "female")

_WORD = re.compile(r"\w+")  # the words of LimeTextExplainer's default split_expression r"\W+"


# --------------------------------------------------------------------------------------------
# The common format
# --------------------------------------------------------------------------------------------


@dataclass
class Attribution:
    """One explanation: a weight per word (or token) for one class of one prediction.

    ``weights[j] > 0`` means word ``j`` pushes the score of ``label`` up. ``base_value`` is the
    score with every word hidden and ``prediction`` the score of the full sentence (for Shapley
    values ``weights.sum() == prediction - base_value``, the efficiency axiom).
    """

    tokens: list[str]
    weights: np.ndarray
    method: str
    label: str
    prediction: float = float("nan")
    base_value: float = float("nan")
    text: str = ""
    spans: list[tuple[int, int]] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weights = np.asarray(self.weights, dtype=np.float64).reshape(-1)
        if len(self.tokens) != len(self.weights):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.weights)} weights: they must pair up.")

    def pairs(self) -> list[tuple[str, float]]:
        """The (token, weight) pairs in sentence order."""
        return [(t, float(w)) for t, w in zip(self.tokens, self.weights)]

    def order(self) -> np.ndarray:
        """Word indices from the most supporting (largest weight) to the most opposing."""
        return np.argsort(-self.weights, kind="stable")

    def top(self, k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` words with the largest |weight|, largest first."""
        idx = np.argsort(-np.abs(self.weights), kind="stable")[:k]
        return [(self.tokens[i], float(self.weights[i])) for i in idx]

    def to_frame(self):
        """A DataFrame with columns position, token, weight (sentence order)."""
        import pandas as pd

        return pd.DataFrame({"position": np.arange(len(self.tokens)), "token": self.tokens, "weight": self.weights})


# --------------------------------------------------------------------------------------------
# Batched prediction on strings and on token ids
# --------------------------------------------------------------------------------------------


def _logits(out):
    """Logits from a transformers output (``.logits``) or a plain tensor; shape (N, C)."""
    return out.logits if hasattr(out, "logits") else out


class BatchedPredictor:
    """Class probabilities of a sequence classifier, batched: ``predictor(texts) -> (n, C)``.

    Texts are tokenized in one call, sorted by length (so each batch pads only to its own longest
    text), run under ``torch.inference_mode`` with bf16/fp16 autocast on CUDA
    (:func:`helpers.config.autocast`), and returned in input order as float32 probabilities
    ``softmax(logits)``. ``model(input_ids=..., attention_mask=...)`` must return logits (N, C) or an
    object with ``.logits``. The tokenizer must be a fast (Rust) tokenizer: word spans come from its
    offset mapping.
    """

    def __init__(self, model, tokenizer, *, device=None, batch_size: int | None = None, max_length: int = 128,
                 class_names: Sequence[str] | None = None) -> None:
        import torch

        from .config import get_device, size

        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("BatchedPredictor needs a fast tokenizer (AutoTokenizer.from_pretrained(..., use_fast=True)).")
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3 tokens, got {max_length}.")
        self.device = get_device(device) if not isinstance(device, torch.device) else device
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.batch_size = int(batch_size or size("encode_batch_size"))
        self.max_length = int(max_length)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        n_out = getattr(getattr(model, "config", None), "num_labels", None)
        if class_names is None:
            id2label = getattr(getattr(model, "config", None), "id2label", None) or {}
            class_names = [str(id2label.get(i, f"class {i}")) for i in range(n_out or 2)]
        self.class_names = [str(c) for c in class_names]
        self.calls = 0  # texts (or perturbed inputs) evaluated so far

    # -- classes -----------------------------------------------------------------------------
    def class_index(self, label: int | str) -> int:
        """Index of a class given by index or name; ``ValueError`` naming the known classes."""
        if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
            if 0 <= int(label) < len(self.class_names):
                return int(label)
        elif isinstance(label, str) and label in self.class_names:
            return self.class_names.index(label)
        raise ValueError(f"Unknown class {label!r}. Known classes: {self.class_names} (or their index 0..{len(self.class_names) - 1}).")

    # -- token ids -> logits -----------------------------------------------------------------
    def logits_from_ids(self, input_ids, lengths=None):
        """Logits (N, C), float32, on the device, for a padded id tensor ``input_ids`` (N, T).

        ``lengths`` (N,) gives each row's real length (default: all T). Rows are sorted by length
        and each batch is cut to its own longest row, so little compute goes to padding.
        """
        import torch

        from .config import autocast

        ids = input_ids.to(self.device)
        n, t = ids.shape
        lengths = torch.full((n,), t, device=self.device) if lengths is None else lengths.to(self.device)
        order = torch.argsort(lengths, descending=True, stable=True)
        lens_sorted = lengths[order].tolist()  # one small copy, used to cut batches
        out = []
        positions = torch.arange(t, device=self.device)
        with torch.inference_mode():
            for s in range(0, n, self.batch_size):
                idx = order[s : s + self.batch_size]
                width = int(lens_sorted[s])
                batch = ids[idx, :width]
                attn = (positions[:width][None, :] < lengths[idx][:, None]).long()
                with autocast(self.device):
                    logits = _logits(self.model(input_ids=batch, attention_mask=attn))
                out.append(logits.float())
            logits = torch.cat(out)
            result = torch.empty_like(logits)
            result[order] = logits
        self.calls += n
        return result

    def proba_from_ids(self, input_ids, lengths=None) -> np.ndarray:
        """Probabilities (N, C) as a NumPy array for token ids (see :meth:`logits_from_ids`)."""
        return self.logits_from_ids(input_ids, lengths).softmax(-1).cpu().numpy()

    # -- strings -----------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (with special tokens); ``ValueError`` for empty or too long texts."""
        if isinstance(texts, str):
            raise ValueError("Pass a list of texts, not a single string: predictor([text]).")
        texts = list(texts)
        if not texts:
            raise ValueError("No texts to predict.")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise ValueError(f"Text {i} is a {type(t).__name__}, not a string.")
        enc = self.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        for i, ids in enumerate(enc):
            if len(ids) > self.max_length:
                raise ValueError(f"Text {i} has {len(ids)} tokens, more than max_length={self.max_length}; "
                                 "shorten it or build the predictor with a larger max_length.")
        return enc

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities (len(texts), C), float32, in input order."""
        import torch

        enc = self.tokenize(texts)
        lengths = torch.tensor([len(e) for e in enc])
        ids = torch.full((len(enc), int(lengths.max())), self.pad_id, dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e)] = torch.tensor(e)
        return self.proba_from_ids(ids, lengths)

    def predict_one_at_a_time(self, texts: Sequence[str]) -> np.ndarray:
        """The naive reference: one forward pass per text, no padding (slow; used by tests/benchmarks)."""
        import torch

        rows = []
        with torch.inference_mode():
            for ids in self.tokenize(texts):
                x = torch.tensor([ids], device=self.device)
                rows.append(_logits(self.model(input_ids=x, attention_mask=torch.ones_like(x))).float().softmax(-1))
        return torch.cat(rows).cpu().numpy()

    def masked(self, text: str, *, label: int | str | None = None, hide: str = "mask",
               output: str = "proba") -> "MaskedText":
        """The value function of ``text`` over word masks (see :class:`MaskedText`)."""
        return MaskedText(self, text, label=label, hide=hide, output=output)


# --------------------------------------------------------------------------------------------
# Token-level perturbation: one tokenization, masks over words applied to ids on the device
# --------------------------------------------------------------------------------------------


class MaskedText:
    """A sentence tokenized once; ``v(keep) -> scores`` for boolean word masks ``keep`` (N, W).

    Words are the maximal runs of ``\\w`` characters (LIME's default split ``r"\\W+"``), in
    sentence order. Each token is mapped to the word that contains it through the tokenizer's
    offset mapping; special tokens and punctuation belong to no word and are always kept.
    Perturbation happens on token ids: hidden words become one mask token each (``hide="mask"``)
    or disappear (``hide="remove"``); rows are re-packed to the left with a cumulative sum, so
    ``N`` perturbed inputs cost one gather on the device and no tokenizer call.

    ``output``: ``"proba"`` (probability of ``label``) or ``"log_odds"`` (``log p/(1-p)``; additive
    for a linear bag-of-words model).
    """

    def __init__(self, predictor: BatchedPredictor, text: str, *, label: int | str | None = None,
                 hide: str = "mask", output: str = "proba") -> None:
        import torch

        if not isinstance(text, str) or not text.strip():
            raise ValueError("Cannot explain an empty text: pass a sentence with at least one word.")
        if hide not in ("mask", "remove"):
            raise ValueError(f"hide must be 'mask' or 'remove', got {hide!r}.")
        if output not in ("proba", "log_odds"):
            raise ValueError(f"output must be 'proba' or 'log_odds', got {output!r}.")
        tok = predictor.tokenizer
        if hide == "mask" and tok.mask_token_id is None:
            raise ValueError("This tokenizer has no mask token; use hide='remove'.")
        self.predictor, self.text, self.hide, self.output = predictor, text, hide, output
        spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
        if not spans:
            raise ValueError(f"{text!r} has no words to explain (only punctuation or spaces).")
        self.words = [text[a:b] for a, b in spans]
        self.spans = spans
        enc = tok(text, add_special_tokens=True, truncation=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        if len(ids) > predictor.max_length:
            raise ValueError(f"The text has {len(ids)} tokens, more than max_length={predictor.max_length}; "
                             "shorten it or build the predictor with a larger max_length.")
        starts = np.array([a for a, _ in spans])
        ends = np.array([b for _, b in spans])
        word_of = []
        for (a, b), tid in zip(enc["offset_mapping"], ids):
            if b <= a or tid in tok.all_special_ids:
                word_of.append(-1)
                continue
            j = int(np.searchsorted(starts, a, side="right")) - 1
            word_of.append(j if j >= 0 and a < ends[j] else -1)
        dev = predictor.device
        self.input_ids = torch.tensor(ids, dtype=torch.long, device=dev)
        self.word_of_token = torch.tensor(word_of, dtype=torch.long, device=dev)
        first = np.zeros(len(ids), dtype=bool)
        seen = set()
        for i, j in enumerate(word_of):
            if j >= 0 and j not in seen:
                first[i] = True
                seen.add(j)
        self.first_token = torch.tensor(first, device=dev)
        # the whole sentence: prediction and class
        probs = predictor.proba_from_ids(self.input_ids[None])[0]
        self.label_index = int(np.argmax(probs)) if label is None else predictor.class_index(label)
        self.label = predictor.class_names[self.label_index]
        self.evaluations = 0

    @property
    def n_words(self) -> int:
        return len(self.words)

    def token_ids(self, keep) -> tuple["torch.Tensor", "torch.Tensor"]:  # noqa: F821
        """Perturbed ids (N, T) and lengths (N,) for word masks ``keep`` (N, W), True = keep."""
        import torch

        keep = torch.as_tensor(np.asarray(keep, dtype=bool), device=self.input_ids.device)
        if keep.ndim != 2 or keep.shape[1] != self.n_words:
            raise ValueError(f"Masks must have shape (N, {self.n_words}) (one column per word), got {tuple(keep.shape)}.")
        n, t = keep.shape[0], self.input_ids.shape[0]
        w = self.word_of_token
        hidden_tok = torch.zeros((n, t), dtype=torch.bool, device=keep.device)
        in_word = w >= 0
        hidden_tok[:, in_word] = ~keep[:, w[in_word]]
        ids = self.input_ids.expand(n, t)
        if self.hide == "mask":
            stay = ~hidden_tok | self.first_token  # a hidden word keeps one slot, for its [MASK]
            ids = torch.where(hidden_tok & self.first_token, self.predictor.tokenizer.mask_token_id, ids)
        else:
            stay = ~hidden_tok
        lengths = stay.sum(1)
        pos = stay.long().cumsum(1) - 1
        out = torch.full((n, t), self.predictor.pad_id, dtype=torch.long, device=keep.device)
        rows = torch.arange(n, device=keep.device)[:, None].expand(n, t)
        out[rows[stay], pos[stay]] = ids[stay]
        return out, lengths

    def texts(self, keep) -> list[str]:
        """The perturbed sentences as strings (the slow path's input; used to check :meth:`token_ids`)."""
        mask_str = self.predictor.tokenizer.mask_token if self.hide == "mask" else ""
        out = []
        for row in np.asarray(keep, dtype=bool):
            pieces, last = [], 0
            for (a, b), k in zip(self.spans, row):
                pieces.append(self.text[last:a])
                pieces.append(self.text[a:b] if k else mask_str)
                last = b
            pieces.append(self.text[last:])
            out.append("".join(pieces))
        return out

    def probabilities(self, keep) -> np.ndarray:
        """Class probabilities (N, C) of the perturbed inputs."""
        ids, lengths = self.token_ids(keep)
        self.evaluations += ids.shape[0]
        return self.predictor.proba_from_ids(ids, lengths)

    def _score(self, probs: np.ndarray) -> np.ndarray:
        p = probs[:, self.label_index].astype(np.float64)
        if self.output == "proba":
            return p
        rest = 1.0 - p
        return np.log(np.clip(p, 1e-12, None)) - np.log(np.clip(rest, 1e-12, None))

    def __call__(self, keep) -> np.ndarray:
        """Scores (N,) of the class ``label`` for word masks ``keep`` (N, W) (True = keep)."""
        import torch

        keep = np.asarray(keep, dtype=bool)
        if self.output == "log_odds":  # from logits: no loss of precision near p = 0 or 1
            ids, lengths = self.token_ids(keep)
            self.evaluations += ids.shape[0]
            lp = self.predictor.logits_from_ids(ids, lengths).double().log_softmax(-1)
            c = self.label_index
            others = torch.cat([lp[:, :c], lp[:, c + 1 :]], 1).logsumexp(1)
            return (lp[:, c] - others).cpu().numpy()
        return self._score(self.probabilities(keep))

    def full(self) -> float:
        """The score of the whole sentence."""
        return float(self(np.ones((1, self.n_words), dtype=bool))[0])

    def empty(self) -> float:
        """The score with every word hidden (the baseline)."""
        return float(self(np.zeros((1, self.n_words), dtype=bool))[0])


def _attribution(m: MaskedText, weights, method: str, **info) -> Attribution:
    return Attribution(tokens=list(m.words), weights=weights, method=method, label=m.label, prediction=m.full(),
                       base_value=m.empty(), text=m.text, spans=list(m.spans), info=info)


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
    the binary masks ``z`` (Ribeiro et al. 2016, Eq. 1-3), with weights :math:`\\pi(z)` from
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

    from .config import seeded

    if max_evals < 3:
        raise ValueError(f"max_evals must be at least 3, got {max_evals}.")
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
# Faithfulness, agreement, stability, global summaries
# --------------------------------------------------------------------------------------------


def deletion_curve(m: MaskedText, order: Sequence[int], *, steps: int | None = None) -> np.ndarray:
    """Scores after hiding the first k words of ``order``, for k = 0..steps (default W).

    A faithful attribution, deleted most-important first, makes the score fall fast
    (Samek et al. 2017, IEEE TNNLS, "Evaluating the visualization of what a deep network has learned").
    """
    order = np.asarray(order, dtype=int)
    if sorted(order.tolist()) != list(range(m.n_words)):
        raise ValueError(f"order must be a permutation of the {m.n_words} word indices.")
    steps = m.n_words if steps is None else min(int(steps), m.n_words)
    keep = np.ones((steps + 1, m.n_words), dtype=bool)
    for k in range(1, steps + 1):
        keep[k:, order[k - 1]] = False
    return m(keep)


def random_deletion_curve(m: MaskedText, *, repeats: int = 10, steps: int | None = None, seed: int = 0) -> np.ndarray:
    """Mean deletion curve over ``repeats`` random orders (the baseline an attribution must beat)."""
    rng = np.random.default_rng(seed)
    return np.mean([deletion_curve(m, rng.permutation(m.n_words), steps=steps) for _ in range(repeats)], axis=0)


def aopc(curve: Sequence[float]) -> float:
    """Area over the perturbation curve: :math:`\\frac{1}{K+1}\\sum_{k=0}^{K} (f(x) - f(x^{(k)}))`.

    ``curve[k]`` is the score after k deletions, ``curve[0] = f(x)`` (Samek et al. 2017, Eq. 12).
    """
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 1 or len(c) < 2 or not np.isfinite(c).all():
        raise ValueError("aopc needs a finite 1-D curve with at least 2 points (k = 0 and k = 1).")
    return float(np.mean(c[0] - c))


def rank_agreement(a: Attribution, b: Attribution, *, top: int | None = None) -> dict[str, float]:
    """How much two attributions of the same words agree.

    ``spearman``: Spearman rank correlation of the weights (all words); ``kendall``: Kendall's tau;
    ``top_k_overlap``: |top-k(a) ∩ top-k(b)| / k by |weight| (k = ``top``, default min(5, W)).
    """
    from scipy.stats import kendalltau, spearmanr

    if a.tokens != b.tokens:
        raise ValueError("The two attributions explain different words; compare explanations of the same text.")
    k = min(top or 5, len(a.tokens))
    ta = set(np.argsort(-np.abs(a.weights), kind="stable")[:k])
    tb = set(np.argsort(-np.abs(b.weights), kind="stable")[:k])
    return {"spearman": float(spearmanr(a.weights, b.weights).statistic),
            "kendall": float(kendalltau(a.weights, b.weights).statistic),
            "top_k_overlap": len(ta & tb) / k}


def lime_stability(m: MaskedText, *, seeds: Sequence[int] = (0, 1, 2), num_samples: int = 1000,
                   top: int | None = None) -> dict[str, float]:
    """LIME run with different seeds: mean pairwise Spearman and top-k overlap of the weights."""
    if len(seeds) < 2:
        raise ValueError("Stability needs at least two seeds.")
    runs = [lime_explain(m, num_samples=num_samples, seed=s) for s in seeds]
    pairs = [rank_agreement(a, b, top=top) for a, b in itertools.combinations(runs, 2)]
    return {key: float(np.mean([p[key] for p in pairs])) for key in pairs[0]} | {"seeds": len(seeds)}


def token_importance(attributions: Sequence[Attribution], words: Sequence[str] | None = None) -> "pd.DataFrame":  # noqa: F821
    """Global importance: mean |weight| of each (lower-cased) word over many explanations.

    Columns: word, mean_abs (mean |weight| where the word occurs), mean (signed), count,
    share (its |weight| as a fraction of all |weight| in the explanations where it occurs).
    ``words`` restricts the table to those words (e.g. :data:`GENDER_WORDS`).
    """
    import pandas as pd

    if not attributions:
        raise ValueError("No explanations to summarise.")
    rows = []
    for a in attributions:
        total = np.abs(a.weights).sum() or 1.0
        for t, w in zip(a.tokens, a.weights):
            rows.append((t.lower(), abs(w), w, abs(w) / total))
    df = pd.DataFrame(rows, columns=["word", "abs", "signed", "share"])
    if words is not None:
        df = df[df["word"].isin([w.lower() for w in words])]
    out = df.groupby("word").agg(mean_abs=("abs", "mean"), mean=("signed", "mean"), count=("abs", "size"),
                                 share=("share", "mean")).reset_index()
    return out.sort_values("mean_abs", ascending=False).reset_index(drop=True)


def word_importance_per_text(attributions: Sequence[Attribution], words: Sequence[str]) -> np.ndarray:
    """Mean |weight| of the (lower-cased) ``words`` in each explanation, shape (n,); NaN where none occurs.

    One number per sentence, so sentences can be resampled for an interval (:mod:`helpers.stats`).
    """
    want = {w.lower() for w in words}
    out = np.full(len(attributions), np.nan)
    for i, a in enumerate(attributions):
        hits = [abs(w) for t, w in zip(a.tokens, a.weights) if t.lower() in want]
        if hits:
            out[i] = float(np.mean(hits))
    return out


def explain_many(predictor: BatchedPredictor, texts: Sequence[str], *, method: str = "shap", label: int | str = 1,
                 max_evals: int = 500, num_samples: int = 1000, progress: bool = True) -> list[Attribution]:
    """Explain many sentences (for global summaries) with ``"shap"`` or ``"lime"``, one class."""
    from .progress import tqdm

    if method not in ("shap", "lime"):
        raise ValueError(f"method must be 'shap' or 'lime', got {method!r}.")
    out = []
    for t in tqdm(list(texts), desc=f"explaining ({method})", disable=not progress, leave=False):
        m = MaskedText(predictor, t, label=label)
        out.append(shap_explain(m, max_evals=max_evals) if method == "shap" else lime_explain(m, num_samples=num_samples))
    return out


def time_call(fn: Callable[[], Any], *, repeats: int = 3) -> dict[str, float]:
    """Seconds for the first (cold) call and the median of ``repeats`` further (warm) calls.

    When CUDA is available the device is synchronised before and after each call, so GPU work that
    was queued but not finished is counted.
    """
    import time

    import torch

    def sync() -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()

    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        warm.append(time.perf_counter() - t0)
    return {"cold_s": cold, "warm_s": float(np.median(warm)) if warm else float("nan")}
