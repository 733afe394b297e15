"""Fairness, in parts, each its own module:

* :mod:`helpers.fairness.metrics` - group metrics and fairness gaps (notebook 03), checked against fairlearn, with
  the per-group table and run summaries in :mod:`~helpers.fairness.group_tables`;
* :mod:`helpers.fairness.compare` - two models on one test set: paired bootstrap of a difference (notebook 03);
* :mod:`helpers.fairness.preprocessing` - reweighing, oversampling, proxies (notebook 02);
* :mod:`helpers.fairness.resampling` - undersampling, oversampling and SMOTE with imbalanced-learn (notebook 02);
* :mod:`helpers.fairness.constrained` - penalties and Lagrangian constraints in training (notebook 04), a facade
  over :mod:`~helpers.fairness.surrogates`, :mod:`~helpers.fairness.head`, :mod:`~helpers.fairness.mixture`,
  :mod:`~helpers.fairness.harness` and :mod:`~helpers.fairness.last_layer`.

``from helpers.fairness import demographic_parity_difference`` works too: names are looked up lazily in
those modules, so importing this package is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = ("metrics", "compare", "preprocessing", "resampling", "proxies", "constrained")


def __getattr__(name: str) -> Any:
    for sub in _SUBMODULES:
        try:
            module = importlib.import_module(f"{__name__}.{sub}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{sub}":
                continue
            raise
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"helpers.fairness has no {name!r}")
