"""LoRA adapters with peft: parameter counts by hand, and fine_tune's fairness hook on a LoRA model (helpers.lora)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import lora
from helpers import training as T
from helpers.models import load_classifier


def test_lora_trainable_parameters_match_the_hand_count():
    model = load_classifier(device="cpu", seed=0)
    cfg = model.config
    hand = cfg.num_hidden_layers * 2 * 4 * (cfg.hidden_size + cfg.hidden_size)  # layers x {W_q, W_v} x r (d_in + d_out)
    assert lora.lora_parameter_count(model, r=4) == hand
    head = cfg.hidden_size * 2 + 2  # the 2-way classifier stays trainable
    wrapped = lora.add_lora(model, r=4)
    assert lora.trainable_parameters(wrapped) == hand + head
    assert lora.checkpoint_bytes(wrapped) == 4 * (hand + head)  # float32
    total = sum(p.numel() for p in wrapped.parameters())
    assert lora.trainable_parameters(wrapped) < 0.01 * total
    r8 = lora.add_lora(load_classifier(device="cpu", seed=0), r=8, target_modules=("query", "key", "value"))
    assert lora.trainable_parameters(r8) == cfg.num_hidden_layers * 3 * 8 * 2 * cfg.hidden_size + head


def test_lora_starts_as_the_pretrained_model():
    """B = 0 at initialisation: the adapted model computes exactly what the base model does."""
    base = load_classifier(device="cpu", seed=0)
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])
    with torch.no_grad():
        before = base(input_ids=ids).logits.clone()
        after = lora.add_lora(base, r=4)(input_ids=ids).logits
    assert torch.allclose(before, after, atol=1e-6)


def test_fine_tune_fairness_hook_trains_only_adapters_and_head():
    from helpers.fairness.constrained import FairnessPenalty

    texts = [f"A {a}-year-old person works {h} hours a week." for a, h in zip(range(20, 44), range(30, 54))]
    labels = [int(i % 3 == 0) for i in range(len(texts))]
    groups = np.arange(len(texts)) % 2
    calls = []
    penalty = FairnessPenalty(lam=1.0, constraint="dp", n_groups=2)

    def hook(logits, lab, g, step):
        out = penalty(logits, lab, g, step)
        calls.append((tuple(logits.shape), float(out.detach()), out.requires_grad))
        return out

    base = load_classifier(device="cpu", seed=0)
    frozen = {n: p.detach().clone() for n, p in base.named_parameters()}
    res = T.fine_tune(texts, labels, extra_loss=hook, groups=groups, adapt=lambda m: lora.add_lora(m, r=4),
                      epochs=1, batch_size=8, lr=1e-3, seed=0, device="cpu", progress=False, max_length=32)
    assert len(calls) == 3 and all(c[0] == (8, 2) and c[2] for c in calls)
    assert any(c[1] > 0 for c in calls)
    changed_lora, changed_base = 0, 0
    for name, p in res.model.named_parameters():
        if "lora_B" in name:
            changed_lora += int(p.abs().sum() > 0)  # B starts at 0 and must have moved
        elif "lora_" not in name and "modules_to_save" not in name and "original_module" not in name:
            key = name.replace("base_model.model.", "").replace(".base_layer", "")
            if key in frozen:
                changed_base += int(not torch.equal(p.detach(), frozen[key]))
    assert changed_lora == 2 * base.config.num_hidden_layers and changed_base == 0
    p = T.predict_proba(res.model, res.tokenizer, texts[:4])
    assert p.shape == (4, 2) and np.allclose(p.sum(1), 1)


def test_readable_errors():
    with pytest.raises(ValueError, match="No module called"):
        lora.add_lora(load_classifier(device="cpu", seed=0), target_modules=("q_proj",))
    with pytest.raises(ValueError, match="rank"):
        lora.add_lora(load_classifier(device="cpu", seed=0), r=0)
