"""Reference solutions for notebook 01 (pretraining). Each ``solution_01_k`` returns the answer for check()."""

from __future__ import annotations


def solution_01_1():
    """Shares of a masked batch: (labelled, shown as [MASK], random token, unchanged)."""

    def masking_shares(original_ids, inputs, labels, mask_token_id):
        labelled = labels != -100
        n = int(labelled.sum())
        shown_mask = int((labelled & (inputs == mask_token_id)).sum())
        unchanged = int((labelled & (inputs == original_ids)).sum())
        return n / original_ids.numel(), shown_mask / n, (n - shown_mask - unchanged) / n, unchanged / n

    return masking_shares


def solution_01_2():
    """The masking rule with the bug fixed: the random branch is restricted to selected tokens."""
    import torch

    def my_mask_tokens(input_ids, special_ids, mask_token_id, vocab_size, generator):
        labels = input_ids.clone()
        special = torch.isin(input_ids, torch.tensor(special_ids))
        selected = (torch.rand(input_ids.shape, generator=generator) < 0.15) & ~special
        labels[~selected] = -100
        inputs = input_ids.clone()
        to_mask = (torch.rand(input_ids.shape, generator=generator) < 0.8) & selected
        inputs[to_mask] = mask_token_id
        to_random = (torch.rand(input_ids.shape, generator=generator) < 0.5) & selected & ~to_mask  # fixed
        random_tokens = torch.randint(vocab_size, input_ids.shape, generator=generator)
        inputs[to_random] = random_tokens[to_random]
        return inputs, labels

    return my_mask_tokens


def solution_01_3():
    """WEAT effect size (Caliskan et al. 2017) with numpy."""
    import numpy as np

    def weat_d(X, Y, A, B):
        def unit(v):
            v = np.asarray(v, dtype=float)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        def s(W):
            return (unit(W) @ unit(A).T).mean(1) - (unit(W) @ unit(B).T).mean(1)

        sx, sy = s(X), s(Y)
        return (sx.mean() - sy.mean()) / np.concatenate([sx, sy]).std(ddof=1)

    return weat_d


def solution_01_4():
    """Counterfactual data augmentation (Lu et al. 2020): add a pronoun-swapped copy of each pronoun line."""

    def augment(lines):
        out = list(lines)
        for line in lines:
            if line.startswith("She works in "):
                out.append("He" + line[3:])
            elif line.startswith("He works in "):
                out.append("She" + line[2:])
        return out

    return augment


def solution_01_5():
    """Model answer, for the cpu run: the occupations the corpus mentions rarely sit further from their own
    she-rates than the frequent ones (rare further, (a)): their pronoun was masked few times in training, so the
    model had few gradient steps toward their rates. A run in which the rare ones are fit no worse calls for (c).
    Amplification (b) would not single out the rare occupations. The check accepts the explanation that matches
    the run."""
    return "a"


def solution_01_6():
    """Model answer: (b). d is a standardised difference of mean association scores between two sets of words in
    one embedding space; it predicts nothing by itself about a fine-tuned classifier, and p is not a size."""
    return "b"
