"""LoRA: fine-tune a few low-rank matrices instead of the whole encoder (with ``peft``).

Hu et al. (2022), *LoRA: Low-rank adaptation of large language models*, ICLR: a frozen weight
:math:`W_0 \\in \\mathbb R^{d_\\text{out} \\times d_\\text{in}}` gets a trainable update of rank :math:`r`,

.. math:: h = W_0 x + \\frac{\\alpha}{r} B A x, \\qquad A \\in \\mathbb R^{r \\times d_\\text{in}},\\;
          B \\in \\mathbb R^{d_\\text{out} \\times r},

with :math:`B = 0` at the start (the model begins exactly as pretrained). Each adapted matrix adds
:math:`r (d_\\text{in} + d_\\text{out})` trainable parameters (:func:`lora_parameter_count`). The classification
head stays fully trainable (``modules_to_save``). :func:`add_lora` wraps a model from
:func:`helpers.models.load_classifier`; pass it to :func:`helpers.training.fine_tune` as ``adapt=``.
"""

from __future__ import annotations

from collections.abc import Sequence

#: BERT/MiniLM attention projections that LoRA adapts by default (Hu et al. adapt W_q and W_v).
DEFAULT_TARGETS: tuple[str, ...] = ("query", "value")


def add_lora(model, *, r: int = 8, alpha: int = 16, dropout: float = 0.0,
             target_modules: Sequence[str] = DEFAULT_TARGETS, head: str = "classifier"):
    """Freeze ``model`` and add rank-``r`` LoRA adapters to every ``Linear`` whose name ends in one of
    ``target_modules``; the module called ``head`` stays trainable. Returns the ``peft`` model (same forward)."""
    from peft import LoraConfig, get_peft_model

    if r < 1:
        raise ValueError(f"The LoRA rank r must be at least 1, got {r}.")
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    missing = [t for t in target_modules if t not in names]
    if missing:
        raise ValueError(f"No module called {missing} in the model; try one of {sorted(names)[:20]}.")
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                        modules_to_save=[head] if head in names else None)
    return get_peft_model(model, config)


def trainable_parameters(model) -> int:
    """Number of parameters with ``requires_grad`` (what the optimiser updates)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def lora_parameter_count(model, *, r: int, target_modules: Sequence[str] = DEFAULT_TARGETS) -> int:
    """By hand: :math:`\\sum r (d_\\text{in} + d_\\text{out})` over the ``Linear`` layers of an (unwrapped) model whose
    names end in ``target_modules`` (LoRA has no bias terms)."""
    import torch

    return int(sum(r * (m.in_features + m.out_features) for n, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and n.rsplit(".", 1)[-1] in target_modules))  # fmt: skip


def checkpoint_bytes(model) -> int:
    """Bytes of the weights one has to store for this model: the trainable ones (adapters and head) for a
    LoRA model, every parameter for a fully fine-tuned one (float32 as trained)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return int(sum(p.numel() * p.element_size() for p in params))
