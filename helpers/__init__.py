"""Helpers for the Responsible Foundation Models workbook.

One module per concept, in lesson order: ``config``, ``data``, ``models``, ``pretraining``,
``training``, ``fairness``, ``regularization``, ``explain``, ``robustness``, ``privacy``,
``governance``, ``plots``, ``widgets``, ``exercises`` (plus ``results`` for measured figures).
Importing ``helpers`` is cheap and changes no global state; import the submodule you need.
"""

__version__ = "0.1.0"
