"""Self-checks for notebook 01 (pretraining): masking, a masking bug, WEAT by hand, counterfactual data."""

from __future__ import annotations

import numpy as np

from . import CheckFailed, call, exercise, expect

_MASK, _VOCAB, _SPECIALS = 4, 60, (0, 1, 2, 3, 4)  # [PAD] [UNK] [CLS] [SEP] [MASK]


def _toy_batch(seed: int = 0, rows: int = 400, width: int = 40):
    """A padded batch: [CLS] tokens... [SEP] [PAD]...; ids 5..59 are ordinary tokens."""
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, _VOCAB, (rows, width), generator=g)
    lengths = torch.randint(8, width + 1, (rows,), generator=g)
    for i, n in enumerate(lengths.tolist()):
        ids[i, 0], ids[i, n - 1] = 2, 3
        ids[i, n:] = 0
    return ids


def _reference_shares(original, inputs, labels, mask_id):
    sel = labels != -100
    n = int(sel.sum())
    shown_mask = int((sel & (inputs == mask_id)).sum())
    unchanged = int((sel & (inputs == original)).sum())
    return (n / original.numel(), shown_mask / n, (n - shown_mask - unchanged) / n, unchanged / n)


@exercise("01.1", title="Read a masked batch",
          hint="Labelled positions are those with labels != -100. Among them compare `inputs` with [MASK] "
               "and with the original ids; the four numbers are shares (between 0 and 1).")
def _check_01_1(answer) -> None:
    import torch

    from ..pretraining import mask_tokens

    ids = _toy_batch(1)
    inputs, labels = mask_tokens(ids, special_ids=_SPECIALS, mask_token_id=_MASK, vocab_size=_VOCAB,
                                 generator=torch.Generator().manual_seed(3))
    got = call(answer, ids, inputs, labels, _MASK)
    try:
        got = tuple(float(v) for v in got)
    except TypeError as exc:
        raise CheckFailed("Return four numbers: (labelled share, [MASK] share, random share, unchanged share).") from exc
    expect(len(got) == 4, f"Expected 4 numbers, got {len(got)}.")
    want = _reference_shares(ids, inputs, labels, _MASK)
    names = ("labelled share of all positions", "[MASK] share", "random-token share", "unchanged share")
    for name, g, w in zip(names, got, want):
        expect(abs(g - w) < 1e-6, f"The {name} is {g:.4f}; the batch gives {w:.4f}.")


@exercise("01.2", title="Spot the bug in a masking rule",
          hint="Compare each line with BERT's rule: the random replacement must only touch tokens that were "
               "*selected* (and not already [MASK]ed). Which mask is the random branch combined with?")
def _check_01_2(answer) -> None:
    import torch

    sel_total = mask_total = rnd_total = n_candidates = 0
    for seed in range(4):
        ids = _toy_batch(10 + seed)
        g = torch.Generator().manual_seed(seed)
        out = call(answer, ids.clone(), list(_SPECIALS), _MASK, _VOCAB, g)
        try:
            inputs, labels = out
        except (TypeError, ValueError) as exc:
            raise CheckFailed("Return a pair (inputs, labels) of tensors.") from exc
        expect(tuple(inputs.shape) == tuple(ids.shape) and tuple(labels.shape) == tuple(ids.shape),
               "inputs and labels must have the shape of input_ids.")
        special = torch.isin(ids, torch.tensor(_SPECIALS))
        sel = labels != -100
        expect(not bool((sel & special).any()), "A special or padding token got a label: they must never be selected.")
        expect(bool((inputs[special] == ids[special]).all()), "A special or padding token was changed in the inputs.")
        expect(bool((inputs[~sel] == ids[~sel]).all()),
               "Some tokens without a label were changed: the model is fed corrupted tokens it is never "
               "asked to predict.")
        expect(bool((labels[sel] == ids[sel]).all()), "Labels must hold the original token at selected positions.")
        sel_total += int(sel.sum())
        mask_total += int((sel & (inputs == _MASK)).sum())
        rnd_total += int((sel & (inputs != _MASK) & (inputs != ids)).sum())
        n_candidates += int((~special).sum())
    share = sel_total / n_candidates
    expect(abs(share - 0.15) < 0.01, f"{share:.3f} of the ordinary tokens were selected; BERT selects 0.15.")
    expect(abs(mask_total / sel_total - 0.8) < 0.02, f"{mask_total / sel_total:.3f} of selected tokens became [MASK]; "
                                                     "expected 0.8.")
    expect(abs(rnd_total / sel_total - 0.1) < 0.02, f"{rnd_total / sel_total:.3f} of selected tokens became a random "
                                                    "token; expected about 0.1.")


@exercise("01.3", title="WEAT effect size by hand",
          hint="s(w, A, B) = mean cosine with A minus mean cosine with B; d = (mean s over X - mean s over Y) "
               "divided by the sample standard deviation (ddof=1) of s over X and Y together.")
def _check_01_3(answer) -> None:
    from ..pretraining import weat_effect_size

    rng = np.random.default_rng(7)
    for trial in range(3):
        X, Y, A, B = (rng.normal(size=(n, 5)) + shift for n, shift in ((6, 0.5), (5, -0.2), (4, 0.3), (7, 0.0)))
        got = float(call(answer, X, Y, A, B))
        want = weat_effect_size(X, Y, A, B)
        expect(abs(got - want) < 1e-6, f"On random vectors (trial {trial}) you get d = {got:.4f}, expected {want:.4f}. "
                                       "Check cosine (not dot product) and ddof=1.")


@exercise("01.4", title="Counterfactual data augmentation",
          hint='For every line that matches "She works in ..." or "He works in ...", add a copy with the other '
               "pronoun; keep every original line.")
def _check_01_4(answer) -> None:
    from ..pretraining import pronoun_rates

    lines = ["She works in a sales job.", "He works in a sales job.", "He works in a sales job.",
             "He works in a craft and repair job.", "A 39-year-old white man, never married, works 40 hours a week.",
             "She works in a service job."]
    out = call(answer, list(lines))
    expect(isinstance(out, (list, tuple)), "Return a list of sentences.")
    out = list(out)
    missing = [x for x in set(lines) if out.count(x) < lines.count(x)]
    expect(not missing, f"Original lines are missing from the result: {missing}.")
    expect(out.count(lines[4]) == 1, "Lines without a pronoun sentence should be kept once, unchanged.")
    rates = pronoun_rates(out)
    expect(np.allclose(rates["she_rate"], 0.5), "After augmentation every occupation should have she-rate 0.5; got "
                                                + ", ".join(f"{k}: {v:.2f}" for k, v in rates["she_rate"].items()))
    expect(len(out) == len(lines) + 5, f"Expected {len(lines) + 5} lines (one swapped copy per pronoun line), "
                                       f"got {len(out)}.")
