"""The common ground of every explainer: :class:`Attribution`, :class:`BatchedPredictor`, :class:`MaskedText`
(one tokenisation, words hidden as token ids on the device) and exact Shapley values (the ground truth)."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

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


#: The precisions a :class:`BatchedPredictor` can run its model in on a CPU (``cpu_precision``).
CPU_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "int8")


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices in hardware (x86 flags ``avx512_bf16`` or ``amx_bf16``, read from
    ``/proc/cpuinfo`` on Linux; ``False`` elsewhere). Without them torch still computes in bf16, through conversions,
    which is slower than fp32, so ``cpu_precision="bf16"`` only pays off where this is ``True``."""
    from pathlib import Path

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _predictor_device(device, cpu_precision: str):
    """The ``torch.device`` a :class:`BatchedPredictor` runs on (``cpu_precision`` other than fp32 only on the CPU)."""
    import torch

    from ..config import get_device

    if cpu_precision not in CPU_PRECISIONS:
        raise ValueError(f"cpu_precision must be one of {CPU_PRECISIONS}, got {cpu_precision!r}.")
    dev = get_device(device) if not isinstance(device, torch.device) else device
    if cpu_precision != "fp32" and dev.type != "cpu":
        raise ValueError(f"cpu_precision={cpu_precision!r} is for CPU inference; this predictor runs on {dev}, "
                         "where bf16 (or fp16) autocast is always used. Leave cpu_precision='fp32' on a GPU.")
    return dev


def _model_class_names(model) -> list[str]:
    """Class names from ``model.config.id2label`` (``"class i"`` where missing), ``config.num_labels`` of them
    (2 without a config)."""
    config = getattr(model, "config", None)
    id2label = getattr(config, "id2label", None) or {}
    return [str(id2label.get(i, f"class {i}")) for i in range(getattr(config, "num_labels", None) or 2)]


def quantize_for_cpu(model):
    """An int8 copy of ``model`` for fast CPU inference; ``model`` itself is left unchanged (the fp32 reference), and
    the copy shares its tensors other than the ``nn.Linear`` weights (embeddings, LayerNorm) with it.

    Dynamic quantisation, PyTorch's ``quantize_dynamic``: the int8 arithmetic of Jacob et al. (2018, "Quantization
    and training of neural networks for efficient integer-arithmetic-only inference"), whose scheme fixes the
    activation scales in advance (ranges tracked as moving averages during training), here with the activation
    scale computed from each batch at run time instead (hence "dynamic"; no calibration). Every ``nn.Linear``
    weight W (out, in) is stored as int8 with one symmetric scale per output row,
    ``scale_o = max_i |W[o, i]| / 127.5`` (``per_channel_dynamic_qconfig``; one scale for the whole matrix lets
    a single large row coarsen all the others), so each weight is off by at most ``scale_o / 2``. At run time each activation batch is quantised with one scale for the whole batch, the
    matrix product runs in int8 with int32 accumulation (fbgemm/x86 kernels) and is rescaled to float.
    Embeddings, LayerNorm, softmax and the pooling stay fp32. That one activation scale per batch is the
    method's limit: one outlier token or channel coarsens the rounding of all the others, and a fine-tuned
    classifier with a sharp head turns that into visible probability changes (``benchmarks/int8_variants.py``
    compares this scheme with others), so the int8 copy is for exploring, and fp32 stays the reference. It uses
    ``torch.ao.quantization.quantize_dynamic``: torch marks it deprecated in favour of torchao's ``quantize_``,
    but torchao's int8 configurations run eager-mode CPU matrix products without int8 kernels (slower than fp32,
    see ``benchmarks/explain_speed.py``), so the torch.ao path is the one that speeds up a CPU; its deprecation
    warnings are silenced here. ``ValueError`` when the installed torch has no int8 CPU engine.
    """
    import warnings

    import torch

    engines = getattr(torch.backends.quantized, "supported_engines", [])
    if not any(e in engines for e in ("x86", "fbgemm", "onednn", "qnnpack")):
        raise ValueError(f"This torch build has no int8 CPU engine (engines: {engines}); use cpu_precision='fp32'.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # only the nn.Linear layers are replaced: the copy shares every other tensor (the embeddings are most
        # of the model's memory) with ``model`` when it is already on the CPU
        in_linear = {id(t) for mod in model.modules() if isinstance(mod, torch.nn.Linear) for t in mod.parameters()}
        shared = {id(t): t for t in [*model.parameters(), *model.buffers()]
                  if id(t) not in in_linear and t.device.type == "cpu"}
        cpu_copy = copy.deepcopy(model, shared).to("cpu").eval()
        return quantize_dynamic(cpu_copy, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                                inplace=True)


class BatchedPredictor:
    """Class probabilities of a sequence classifier, batched: ``predictor(texts) -> (n, C)``.

    Strings go through the workbook's one inference path (:func:`helpers.models.tokenize`,
    :func:`helpers.models.forward_batches`): tokenized in one call, texts longer than ``max_length``
    tokens cut by :data:`helpers.models.TRUNCATION_RULE`, sorted by length (each batch pads only to its own
    longest text), run under ``torch.inference_mode`` with bf16/fp16 autocast on CUDA, returned in input
    order as float32 probabilities ``softmax(logits)``. ``model(input_ids=..., attention_mask=...)`` must
    return logits (N, C) or an object with ``.logits``. The tokenizer must be a fast (Rust) tokenizer: word
    spans come from its offset mapping.

    ``cpu_precision`` (CPU only) trades exactness for speed: ``"fp32"`` (the reference), ``"bf16"`` (bf16
    autocast: bfloat16 keeps fp32's exponent range with 8 significant bits, so the inputs and outputs of
    each matrix product are rounded with a relative error of at most 2^-8, about 0.4 %; fast only where
    :func:`cpu_has_bf16`) or ``"int8"`` (an int8 copy of the model, :func:`quantize_for_cpu`). ``model`` itself stays fp32; :meth:`at_precision` gives the same
    predictor at another precision.
    """

    def __init__(self, model, tokenizer, *, device=None, batch_size: int | None = None, max_length: int = 128,
                 class_names: Sequence[str] | None = None, cpu_precision: str = "fp32") -> None:
        from ..config import size
        from ..models import pad_token_id

        if not getattr(tokenizer, "is_fast", False):
            raise ValueError("BatchedPredictor needs a fast tokenizer (AutoTokenizer.from_pretrained(..., use_fast=True)).")
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3 tokens, got {max_length}.")
        self.device = _predictor_device(device, cpu_precision)
        self.cpu_precision = cpu_precision
        self.fp32_model = model.to(self.device).eval()
        self.model = quantize_for_cpu(self.fp32_model) if cpu_precision == "int8" else self.fp32_model
        self.tokenizer = tokenizer
        self.batch_size = int(batch_size or size("encode_batch_size"))
        self.max_length = int(max_length)
        self.pad_id = pad_token_id(tokenizer)
        self.class_names = [str(c) for c in (class_names if class_names is not None else _model_class_names(model))]
        self.calls = 0  # texts (or perturbed inputs) evaluated so far

    def at_precision(self, cpu_precision: str) -> "BatchedPredictor":
        """The same predictor with its model run at ``cpu_precision`` (see :data:`CPU_PRECISIONS`); this one is
        left as it is."""
        return BatchedPredictor(self.fp32_model, self.tokenizer, device=self.device, batch_size=self.batch_size,
                                max_length=self.max_length, class_names=self.class_names, cpu_precision=cpu_precision)

    def _precision(self):
        """The context the model runs in. ``cpu_precision="bf16"``: CPU autocast, under which every ``nn.Linear``,
        the attention and the GELU between them compute in bf16, while the residual sums and LayerNorm stay fp32
        (a bf16 tensor added to an fp32 one gives fp32); the logits come out in bf16. Otherwise nothing extra."""
        import contextlib

        import torch

        if self.cpu_precision == "bf16":
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

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

        from ..models import Tokenized, forward_batches, logits_of

        ids = input_ids.to(self.device)
        n, t = ids.shape
        lengths = torch.full((n,), t, device=self.device) if lengths is None else lengths.to(self.device)
        with self._precision():
            logits = forward_batches(self.model, Tokenized(ids, lengths, self.pad_id), batch_size=self.batch_size,
                                     head=lambda out, mask: logits_of(out))
        self.calls += n
        return logits

    def proba_from_ids(self, input_ids, lengths=None) -> np.ndarray:
        """Probabilities (N, C) as a NumPy array for token ids (see :meth:`logits_from_ids`)."""
        return self.logits_from_ids(input_ids, lengths).softmax(-1).cpu().numpy()

    # -- strings -----------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text (with special tokens, cut by :data:`helpers.models.TRUNCATION_RULE`)."""
        from ..models import tokenize

        tok = tokenize(texts, self.tokenizer, max_length=self.max_length)
        return [row[:n].tolist() for row, n in zip(tok.ids, tok.lengths.tolist())]

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities (len(texts), C), float32, in input order."""
        from ..models import tokenize

        tok = tokenize(texts, self.tokenizer, max_length=self.max_length)
        return self.proba_from_ids(tok.ids, tok.lengths)

    def predict_one_at_a_time(self, texts: Sequence[str]) -> np.ndarray:
        """The naive reference: one forward pass per text, no padding (slow; used by tests/benchmarks)."""
        import torch

        from ..models import logits_of

        rows = []
        with torch.inference_mode(), self._precision():
            for ids in self.tokenize(texts):
                x = torch.tensor([ids], device=self.device)
                rows.append(logits_of(self.model(input_ids=x, attention_mask=torch.ones_like(x))).float().softmax(-1))
        return torch.cat(rows).cpu().numpy()

    def masked(self, text: str, *, label: int | str | None = None, hide: str = "mask",
               output: str = "proba") -> "MaskedText":
        """The value function of ``text`` over word masks (see :class:`MaskedText`)."""
        return MaskedText(self, text, label=label, hide=hide, output=output)


# --------------------------------------------------------------------------------------------
# Token-level perturbation: one tokenization, masks over words applied to ids on the device
# --------------------------------------------------------------------------------------------


def _check_masked_text(text: str, hide: str, output: str, tok) -> None:
    """:class:`MaskedText`'s argument checks (a ValueError naming the argument)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Cannot explain an empty text: pass a sentence with at least one word.")
    if hide not in ("mask", "remove"):
        raise ValueError(f"hide must be 'mask' or 'remove', got {hide!r}.")
    if output not in ("proba", "log_odds"):
        raise ValueError(f"output must be 'proba' or 'log_odds', got {output!r}.")
    if hide == "mask" and tok.mask_token_id is None:
        raise ValueError("This tokenizer has no mask token; use hide='remove'.")


def _token_words(offsets, ids, spans, special_ids: set) -> tuple[list[int], np.ndarray]:
    """For every token, the index of the word whose character span holds its start (-1 for special tokens and
    tokens outside every word), and whether it is that word's first token: ``(word_of (T,), first (T,) bool)``."""
    starts = np.array([a for a, _ in spans])
    ends = np.array([b for _, b in spans])
    word_of = []
    for (a, b), tid in zip(offsets, ids):
        j = int(np.searchsorted(starts, a, side="right")) - 1
        inside = b > a and tid not in special_ids and j >= 0 and a < ends[j]
        word_of.append(j if inside else -1)
    return word_of, _first_of_each(word_of)


def _first_of_each(word_of: list[int]) -> np.ndarray:
    """``first[i]``: token ``i`` is the first token of its word (words ``>= 0``), shape ``(T,)`` bool."""
    first = np.zeros(len(word_of), dtype=bool)
    seen: set[int] = set()
    for i, j in enumerate(word_of):
        if j >= 0 and j not in seen:
            first[i] = True
            seen.add(j)
    return first


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

        tok = predictor.tokenizer
        _check_masked_text(text, hide, output, tok)
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
        word_of, first = _token_words(enc["offset_mapping"], ids, spans, set(tok.all_special_ids))
        dev = predictor.device
        self.input_ids = torch.tensor(ids, dtype=torch.long, device=dev)
        self.word_of_token = torch.tensor(word_of, dtype=torch.long, device=dev)
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
# Exact Shapley values
# --------------------------------------------------------------------------------------------






