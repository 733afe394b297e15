"""Self-checks for notebook 01 (pretraining): masking, a masking bug, WEAT by hand, counterfactual data."""

from __future__ import annotations

import numpy as np

from . import CheckFailed, NotAttempted, call, choice, exercise, expect, experiment

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
          hint="A position carries a label when its label is not -100. The first share divides by every position "
               "of the batch; the other three divide by the labelled positions only, and sum to 1.")
def _check_01_1(answer) -> None:
    import torch

    from ..pretraining import mask_tokens

    for seed, rows in ((1, 400), (2, 37), (5, 120)):
        ids = _toy_batch(seed, rows=rows)
        inputs, labels = mask_tokens(ids, special_ids=_SPECIALS, mask_token_id=_MASK, vocab_size=_VOCAB,
                                     generator=torch.Generator().manual_seed(seed + 2))
        got = call(answer, ids, inputs, labels, _MASK)
        try:
            got = tuple(float(v) for v in got)
        except (TypeError, ValueError) as exc:
            raise CheckFailed("return four numbers: (labelled share, [MASK] share, random share, unchanged share).") \
                from exc
        expect(len(got) == 4, f"expected 4 numbers, got {len(got)}.")
        want = _reference_shares(ids, inputs, labels, _MASK)
        names = ("labelled share of all positions", "[MASK] share", "random-token share", "unchanged share")
        for name, g, w in zip(names, got, want):
            expect(abs(g - w) < 1e-6, f"on a batch of {rows} rows your {name} is {g:.4f}, which does not match the "
                                      "batch (count the positions again: which ones are the denominator?).")


def _as_printed(ids, generator):
    """The notebook's masking code as printed (its random branch may hit unselected tokens, specials included)."""
    import torch

    special = torch.isin(ids, torch.tensor(_SPECIALS))
    selected = (torch.rand(ids.shape, generator=generator) < 0.15) & ~special
    labels = ids.masked_fill(~selected, -100)
    to_mask = (torch.rand(ids.shape, generator=generator) < 0.8) & selected
    inputs = ids.masked_fill(to_mask, _MASK)
    to_random = (torch.rand(ids.shape, generator=generator) < 0.5) & ~to_mask
    random_tokens = torch.randint(_VOCAB, ids.shape, generator=generator)
    return torch.where(to_random, random_tokens, inputs), labels


@exercise("01.2", title="Spot the bug in a masking rule",
          hint="Read the three boolean masks (selected, to_mask, to_random) and ask, for each, which tokens it may "
               "contain according to BERT's rule in section 3. One of them may contain tokens BERT never touches.",
          kind="spot-the-bug")
def _check_01_2(answer) -> None:
    import torch

    ids = _toy_batch(10)
    out = call(answer, ids.clone(), list(_SPECIALS), _MASK, _VOCAB, torch.Generator().manual_seed(0))
    printed = _as_printed(ids, torch.Generator().manual_seed(0))
    if (isinstance(out, (tuple, list)) and len(out) == 2 and all(torch.is_tensor(t) for t in out)
            and all(t.shape == p.shape and torch.equal(t, p) for t, p in zip(out, printed))):
        raise NotAttempted
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
        replaced = inputs[sel & (inputs != _MASK) & (inputs != ids)]
        expect(len(set(replaced.tolist())) >= 20 and float(torch.isin(replaced, torch.tensor(_SPECIALS)).float()
                                                             .mean()) < 0.2,
               f"the 'random' replacements take only {len(set(replaced.tolist()))} distinct values "
               f"({sorted(set(replaced.tolist()))[:5]}...): they should be tokens drawn from the vocabulary.")
    share = sel_total / n_candidates
    expect(abs(share - 0.15) < 0.01, f"{share:.3f} of the ordinary tokens were selected; BERT selects 0.15.")
    expect(abs(mask_total / sel_total - 0.8) < 0.02, f"{mask_total / sel_total:.3f} of selected tokens became [MASK]; "
                                                     "expected 0.8.")
    expect(abs(rnd_total / sel_total - 0.1) < 0.02, f"{rnd_total / sel_total:.3f} of selected tokens became a random "
                                                    "token; expected about 0.1.")


@exercise("01.3", title="WEAT effect size by hand",
          hint="Build it in two steps, as the formula in section 6 does: first s(w, A, B) for every row w of X and "
               "of Y (cosines need unit-length rows), then d from those two lists. Which rows enter the standard "
               "deviation, and with which ddof?",
          forbid=("helpers.pretraining.weat_effect_size", "helpers.pretraining.weat_association",
                  "helpers.pretraining.weat"))
def _check_01_3(answer) -> None:
    from ..pretraining import weat_effect_size

    rng = np.random.default_rng(7)
    for trial in range(3):
        X, Y, A, B = (rng.normal(size=(n, 5)) * rng.uniform(0.5, 3, (n, 1)) + shift
                      for n, shift in ((6, 0.5), (5, -0.2), (4, 0.3), (7, 0.0)))
        got = float(call(answer, X, Y, A, B))
        want = weat_effect_size(X, Y, A, B)
        expect(abs(got - want) < 1e-6, f"on random vectors of different lengths (trial {trial}) you get d = {got:.4f}, "
                                       f"the formula gives {want:.4f}.")


@exercise("01.4", title="Counterfactual data augmentation",
          hint="The result is longer than the input: what stays, and what is added for each pronoun sentence? "
               "Only the first word of such a sentence changes.")
def _check_01_4(answer) -> None:
    from ..pretraining import pronoun_rates

    lines = ["She works in a sales job.", "He works in a sales job.", "He works in a sales job.",
             "He works in a craft and repair job.", "A 39-year-old white man, never married, works 40 hours a week.",
             "She works in a service job."]
    for extra in (["He works in a farming and fishing job."] * 3, ["A 50-year-old woman. Household role: wife."]):
        out = call(answer, lines + extra)
        expect(isinstance(out, (list, tuple)), "return a list of sentences.")
        rates = pronoun_rates(list(out))
        expect(np.allclose(rates["she_rate"], 0.5), "after augmentation some occupations do not have she-rate 0.5: "
               + ", ".join(f"{k}: {v:.2f}" for k, v in rates["she_rate"].items()))
    out = call(answer, list(lines))
    expect(isinstance(out, (list, tuple)), "Return a list of sentences.")
    out = list(out)
    missing = [x for x in set(lines) if out.count(x) < lines.count(x)]
    expect(not missing, f"Original lines are missing from the result: {missing}.")
    expect(out.count(lines[4]) == 1, "Lines without a pronoun sentence should be kept once, unchanged.")
    rates = pronoun_rates(out)
    expect(np.allclose(rates["she_rate"], 0.5), "after augmentation some occupations do not have she-rate 0.5: "
                                                + ", ".join(f"{k}: {v:.2f}" for k, v in rates["she_rate"].items()))
    expect(len(out) == len(lines) + 5, f"from {len(lines)} lines (5 of them pronoun sentences) you return {len(out)}.")


def _rare_vs_frequent(table) -> str:
    """Are the rarely mentioned occupations fit worse than the frequent ones (mean |model - corpus| gap)?"""
    from ..bias_probes import FIT_MARGIN, fit_by_frequency

    fit = fit_by_frequency(table)
    if fit["frequent"].all() or not fit["frequent"].any():
        raise CheckFailed("pass the section-5 table (`table`): it needs both frequent and rare occupations.")
    diff = float(fit.loc[~fit["frequent"], "gap"].mean() - fit.loc[fit["frequent"], "gap"].mean())
    return "rare further" if diff > FIT_MARGIN else ("rare closer" if diff < -FIT_MARGIN else "about the same")


experiment(
    "01.5", "where does the model copy its corpus?",
    outcomes=("rare further", "about the same", "rare closer"),
    observe=_rare_vs_frequent,
    reasons={"a": "the model learned the occupation-pronoun statistics only where it saw them often: a rarely "
                  "mentioned occupation has had its pronoun masked few times, so its she-ratio stays near a generic "
                  "value (a model that knows nothing about the occupation would give the corpus-wide share of "
                  "'she') instead of moving to its own rate",
             "b": "the model exaggerates the corpus's associations (bias amplification)",
             "c": "how often the model saw an occupation does not limit its fit in this run: it reproduces the "
                  "rare occupations' rates no worse than the frequent ones'",
             "d": "the tokenizer splits the pronouns into pieces, so the model cannot see them"},
    correct=lambda observed: "a" if observed == "rare further" else "c",
    nudges={"a": "that would leave the rare occupations further from their corpus rates than the frequent ones.",
            "b": "amplification pushes every occupation past its corpus rate, away from the corpus-wide share; it "
                 "gives no reason why rare and frequent occupations would be fit differently.",
            "c": "then the rare occupations' mean gap would be no larger than the frequent ones'.",
            "d": "section 2 printed the tokens of a pronoun sentence: 'she' and 'he' are whole tokens."},
    hint="Compare the mean gap |model she-ratio - corpus she-rate| of the rare occupations with that of the "
         "frequent ones (the table after the prediction); then ask what each explanation predicts for that "
         "comparison.",
)

choice(
    "01.6", "reading a WEAT effect size",
    options={"a": "a model fine-tuned from MiniLM will treat women worse in hiring",
             "b": "in MiniLM's embedding space the first target set sits closer to the first attribute set (relative "
                  "to the second) than the second target set does, by about that many standard deviations of the "
                  "words' association scores",
             "c": "that share of the words are biased",
             "d": "the small p-value shows that the effect is large"},
    correct="b",
    nudges={"a": "section 6 warns that intrinsic measures such as WEAT often disagree with a downstream model's "
                 "behaviour: d says nothing direct about a classifier.",
            "c": "d is a difference of means divided by a standard deviation, not a share of words.",
            "d": "a p-value says how surprising the difference is under random re-partitions, not how large it is."},
    hint="Take the formula for d apart: what is in the numerator, what in the denominator, and which objects "
         "(words? sentences? people?) does it compare?",
)
