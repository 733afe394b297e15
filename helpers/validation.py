"""Input checks shared by every public helper: one place, messages that name the argument and say what to do.

Each function takes the value and the *name of the argument* a student passed (``"X_train"``, ``"y_test"``,
``"groups"``), converts it to a NumPy array of a fixed dtype and raises ``ValueError`` naming that argument when it
is empty, of the wrong shape, of a different length than its partners, holds NaN, or cannot be what the helper
needs (a single class, a single group, the wrong number of features). scikit-learn's ``check_array`` and
``check_consistent_length`` do the conversion and the length check underneath.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_array, check_consistent_length


def _to_numpy(values: Any) -> np.ndarray:
    if hasattr(values, "to_numpy"):
        return np.asarray(values.to_numpy())
    arr = np.asarray(values)
    if arr.dtype.kind in "US" and not isinstance(values, np.ndarray):
        arr = np.asarray(values, dtype=object)  # a list like ["a", nan] must keep its NaN, not become "nan"
    return arr


def _one_d(values: Any, name: str) -> np.ndarray:
    """A 1-D array (an (n, 1) column is flattened), or a ValueError naming ``name``."""
    if values is None:
        raise ValueError(f"{name} is required (got None).")
    arr = _to_numpy(values)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per example), got shape {arr.shape}.")
    if len(arr) == 0:
        raise ValueError(f"{name} is empty: it needs at least one example.")
    return arr


def _nan_count(arr: np.ndarray) -> int:
    if arr.dtype.kind in "fc":
        return int(np.isnan(arr).sum())
    if arr.dtype.kind == "O":
        return int(pd.isna(pd.Series(arr)).sum())
    return 0


def same_length(**arrays: Any) -> int:
    """The common number of rows of the named arrays (``None`` entries are skipped), or a ValueError naming them.

    >>> same_length(y_true=[0, 1], y_pred=[1, 1])
    2
    """
    given = {k: v for k, v in arrays.items() if v is not None}
    try:
        check_consistent_length(*given.values())
    except ValueError:
        sizes = ", ".join(f"{k} has {len(v)}" for k, v in given.items())
        raise ValueError(f"The inputs must have one entry per example, but {sizes}: the lengths must match.") from None
    return len(next(iter(given.values()))) if given else 0


def features(X: Any, name: str = "X", *, n_features: int | None = None, n: int | None = None) -> np.ndarray:
    """Features as a float32 array ``(n, d)``: 2-D, non-empty, finite; ``d == n_features`` and ``n`` rows if given."""
    if X is None:
        raise ValueError(f"{name} is required (got None).")
    try:
        arr = np.asarray(_to_numpy(X), dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers (e.g. sentence embeddings), not text or objects.") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (examples x features), got shape {arr.shape}; "
                         "a single example is X[None, :] or X.reshape(1, -1).")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}): it needs at least one example and one feature.")
    _check_feature_values(arr, name, n_features, n)
    return check_array(arr, dtype=np.float32, input_name=name)


def _check_feature_values(arr: np.ndarray, name: str, n_features: int | None, n: int | None) -> None:
    """:func:`features`' checks on a 2-D array: finite rows, ``n_features`` columns and ``n`` rows if given."""
    bad = ~np.isfinite(arr).all(1)
    if bad.any():
        raise ValueError(f"{name} contains NaN or infinite values in {int(bad.sum())} of {len(arr)} rows; "
                         "drop or fill those rows first.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features per example but the model expects {n_features}: "
                         "pass features from the same encoder the model was trained on.")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} rows but there are {n} examples: the lengths must match.")


def binary_labels(y: Any, name: str = "y", *, n: int | None = None, both_classes: bool = False) -> np.ndarray:
    """0/1 labels as int64 ``(n,)``: 1-D, non-empty, no NaN, only 0 and 1 (booleans too); both present if asked."""
    arr = _one_d(y, name)
    nan = _nan_count(arr)
    if nan:
        raise ValueError(f"{name} contains NaN ({nan} of {len(arr)}); drop or fill those rows first.")
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold 0/1 labels, got values such as {arr[:3].tolist()}.") from None
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        raise ValueError(f"{name} must be binary 0/1 labels (1 = the favourable outcome), but holds "
                         f"{sorted(set(arr[bad].tolist()))[:5]}. Threshold probabilities first, e.g. (p >= 0.5).astype(int).")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but there are {n} examples: the lengths must match.")
    arr = arr.astype(np.int64)
    if both_classes and len(np.unique(arr)) < 2:
        raise ValueError(f"{name} holds a single class ({int(arr[0])}): a classifier needs examples of both 0 and 1.")
    return arr


def group_codes(groups: Any, name: str = "groups", *, n: int | None = None, min_groups: int = 1) -> np.ndarray:
    """Sensitive-group codes as int64 ``(n,)``: integers ``0..K-1`` (booleans too), at least ``min_groups`` distinct."""
    arr = _one_d(groups, name)
    nan = _nan_count(arr)
    if nan:
        raise ValueError(f"{name} contains missing values ({nan} of {len(arr)}); fill them with a group or drop the rows.")
    if arr.dtype.kind == "f" and np.array_equal(arr, np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integer group codes 0..K-1, got values such as {arr[:3].tolist()}; "
                         "convert names with encode_groups(df['sex']) or pd.factorize(df['sex'])[0].")
    arr = arr.astype(np.int64)
    if (arr < 0).any():
        raise ValueError(f"{name} must hold group codes 0..K-1; found the negative code {int(arr.min())}.")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but there are {n} examples: the lengths must match.")
    k = len(np.unique(arr))
    if k < min_groups:
        raise ValueError(f"{name} holds a single group ({int(arr[0])}): a fairness gap needs at least "
                         f"{min_groups} groups to compare.")
    return arr


def group_values(values: Any, name: str = "groups", *, min_groups: int = 1) -> np.ndarray:
    """Group *names* (any hashable: strings, numbers) as a 1-D object array without missing values."""
    arr = _one_d(values, name)
    nan = _nan_count(arr)
    if nan:
        raise ValueError(f"{name} contains missing values ({nan} of {len(arr)}); fill them with a group name "
                         "or drop the rows.")
    if len(pd.unique(arr)) < min_groups:
        raise ValueError(f"{name} holds a single group ({arr[0]!r}): a fairness gap needs at least {min_groups} "
                         "groups to compare.")
    return arr


def sample_weights(w: Any, n: int, name: str = "sample_weight") -> np.ndarray | None:
    """``None``, or float64 weights ``(n,)``: finite, non-negative, not all zero."""
    if w is None:
        return None
    arr = np.asarray(_one_d(w, name), dtype=np.float64)
    if len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but there are {n} examples: one weight per example.")
    if not np.isfinite(arr).all() or (arr < 0).any() or arr.sum() <= 0:
        raise ValueError(f"{name} must be finite, non-negative and not all zero.")
    return arr


def probabilities(p: Any, name: str = "y_prob", *, n: int | None = None) -> np.ndarray:
    """Probabilities as float64 ``(n,)`` in [0, 1] without NaN."""
    arr = _one_d(p, name)
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold probabilities, got values such as {arr[:3].tolist()}.") from None
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 1).any():
        raise ValueError(f"{name} must be probabilities in [0, 1] without NaN (pass P(y=1), shape (n,)).")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but there are {n} examples: the lengths must match.")
    return arr


def texts(values: Any, name: str = "texts") -> list[str]:
    """A non-empty list of strings (a single string is refused: wrap it in a list)."""
    if isinstance(values, str):
        raise ValueError(f"{name} must be a list of sentences, not a single string; wrap it in [ ].")
    if values is None:
        raise ValueError(f"{name} is required (got None).")
    out = list(values)
    if not out:
        raise ValueError(f"{name} is empty: there are no sentences to work on.")
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"{name} must hold strings; item {bad[0]} is a {type(out[bad[0]]).__name__}.")
    return out


def one_of(value: Any, options: Iterable[Any], name: str) -> Any:
    """``value`` if it is one of ``options``, else a ValueError listing them."""
    options = tuple(options)
    if value not in options:
        raise ValueError(f"Unknown {name} {value!r}: use one of {', '.join(repr(o) for o in options)}.")
    return value


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1 (epochs, batch sizes, resamples)."""
    if isinstance(value, bool) or not float(value).is_integer() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}.")
    return int(value)


def model_width(model: Any) -> int | None:
    """The number of input features a head expects: its ``n_features`` attribute, else the ``in_features`` of
    its first ``Linear`` layer, else the width of a ``weight`` parameter; ``None`` when none is found."""
    import torch

    width = getattr(model, "n_features", None)
    if width is not None:
        return int(width)
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            return int(module.in_features)
    weight = getattr(model, "weight", None)
    return int(weight.shape[-1]) if isinstance(weight, torch.Tensor) and weight.ndim == 2 else None


def labelled_features(X: Any, y: Any, groups: Any = None, *, names: tuple[str, str, str] = ("X", "y", "groups"),
                      min_groups: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Training data for a classifier: :func:`features` ``X`` (n, d), :func:`binary_labels` ``y`` (n,) with both
    classes, and :func:`group_codes` ``groups`` (n,) (or ``None``), one entry per row of ``X``."""
    X = features(X, names[0])
    y = binary_labels(y, names[1], n=len(X), both_classes=True)
    g = None if groups is None and min_groups <= 1 else group_codes(groups, names[2], n=len(X), min_groups=min_groups)
    return X, y, g


def factorize(values: Any, name: str = "groups", *, n: int | None = None,
              min_groups: int = 1) -> tuple[np.ndarray, pd.Index]:
    """Any group or label values -> integer codes ``0..K-1`` (int64, sorted by value) and the ``K`` values
    (a ``pd.Index`` named ``name``), via :func:`group_values` (no missing values, ``n`` entries if given)."""
    arr = group_values(values, name, min_groups=min_groups)
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but there are {n} examples: the lengths must match.")
    codes, uniques = pd.factorize(pd.Series(arr, dtype=object), sort=True)
    return codes.astype(np.int64), pd.Index(uniques, name=name)
