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

The code: :mod:`~helpers.explain.core` (attributions, the batched predictor, :class:`MaskedText`),
:mod:`~helpers.explain.lime_shap` (LIME and SHAP) and :mod:`~helpers.explain.evaluation` (faithfulness,
agreement, stability, global summaries, timing); this package re-exports their public names as ``ex.<name>``.
"""

from __future__ import annotations

from ..shapley import all_masks, exact_shapley, shapley_from_values  # noqa: F401  (implemented there)
from .core import (  # noqa: F401
    _WORD,
    CPU_PRECISIONS,
    GENDER_WORDS,
    Attribution,
    BatchedPredictor,
    MaskedText,
    cpu_has_bf16,
    quantize_for_cpu,
)
from .evaluation import (  # noqa: F401
    aopc,
    compare_predictors,
    deletion_curve,
    describe_precisions,
    describe_token_path,
    explain_many,
    lime_stability,
    precision_summary,
    random_deletion_curve,
    rank_agreement,
    time_breakdown,
    time_call,
    token_importance,
    word_importance_per_text,
)
from .lime_shap import (  # noqa: F401
    WordMasker,
    contiguous_tree,
    lime_explain,
    lime_explain_strings,
    lime_kernel,
    lime_samples,
    shap_explain,
    shap_explain_strings,
    warm_up,
)

__all__ = ["Attribution", "BatchedPredictor", "CPU_PRECISIONS", "GENDER_WORDS", "MaskedText", "WordMasker", "all_masks", "aopc", "compare_predictors", "contiguous_tree", "cpu_has_bf16", "deletion_curve", "describe_precisions", "describe_token_path", "exact_shapley", "explain_many", "lime_explain", "lime_explain_strings", "lime_kernel", "lime_samples", "lime_stability", "precision_summary", "quantize_for_cpu", "random_deletion_curve", "rank_agreement", "shap_explain", "shap_explain_strings", "shapley_from_values", "time_breakdown", "time_call", "token_importance", "warm_up", "word_importance_per_text"]
