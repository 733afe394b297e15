"""Proxies: how much of a sensitive attribute the *other* columns (or the text) still carry.

Dropping the column ``sex`` does not make a model blind to sex if other columns predict it.
Two measures:

* the cross-validated ROC AUC of a classifier that predicts the sensitive attribute from the
  remaining columns (0.5 = no information; 1.0 = a perfect proxy) - all columns together
  (:func:`proxy_auc`) and one column at a time (:func:`proxy_table`);
* the mutual information :math:`I(X_j; A) = \\sum p(x, a) \\log \\frac{p(x,a)}{p(x)p(a)}` between each
  column and the attribute (Cover & Thomas 2006, ch. 2), estimated with
  ``sklearn.feature_selection.mutual_info_classif`` (plug-in from counts for categorical columns and for numeric
  ones with at most ``DISCRETE_LEVELS`` distinct values, such as a code; plug-in from counts in quantile bins for
  integer-valued or mostly-one-value numeric columns; the Kraskov et al. 2004 k-NN estimator, which assumes continuous
  values, only for continuous columns: :func:`mi_estimators`), reported in bits and as a share of :math:`H(A)`. The plug-in
  estimate is biased upwards by about :math:`(|X|-1)(|A|-1)/(2n\\ln 2)` bits (Miller 1955), so a column with
  many levels on a few thousand rows shows a little information even when it carries none.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .. import validation as check


def _target(values, n: int | None = None) -> np.ndarray:
    """The sensitive attribute as 0/1 codes (sorted values), or a ValueError: it must have exactly two groups."""
    codes, labels = check.factorize(values, "sensitive", n=n)
    if len(labels) != 2:
        raise ValueError(f"sensitive must have exactly two groups for a proxy AUC (binary attribute), "
                         f"got {list(labels)[:5]}.")
    return codes.astype(np.int64)


def _design(df: pd.DataFrame, columns: Sequence[str]):
    """One-hot categoricals + standardised numerics, as a sklearn pipeline's first step."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    cats = [c for c in columns if not pd.api.types.is_numeric_dtype(df[c])]
    nums = [c for c in columns if pd.api.types.is_numeric_dtype(df[c])]
    return ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), cats), ("num", StandardScaler(), nums)])


def _cv_auc(X, y: np.ndarray, *, seed: int, folds: int, pipeline_first=None) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline

    clf = LogisticRegression(max_iter=2000)
    model = make_pipeline(pipeline_first, clf) if pipeline_first is not None else clf
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    p = cross_val_predict(model, X, y, cv=cv, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, p))


def proxy_auc(df: pd.DataFrame, sensitive: str = "sex", columns: Sequence[str] | None = None, *,
              seed: int = 0, folds: int = 5) -> float:
    """Cross-validated ROC AUC of logistic regression predicting ``sensitive`` from ``columns``.

    ``columns`` defaults to every column except the attribute, ``label``, ``income``, ``source``
    and ``fnlwgt``. AUC = P(score of a random member of group 1 > score of a random member of
    group 0) (Hanley & McNeil 1982).
    """
    if sensitive not in df.columns:
        raise ValueError(f"No column {sensitive!r} in the frame.")
    cols = list(columns) if columns is not None else [
        c for c in df.columns if c not in {sensitive, "label", "income", "source", "fnlwgt"}]  # fmt: skip
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"No column(s) {missing} in the frame.")
    if not cols:
        raise ValueError("No columns left to predict the attribute from.")
    y = _target(df[sensitive])
    return _cv_auc(df[cols], y, seed=seed, folds=folds, pipeline_first=_design(df, cols))


#: A numeric column with at most this many distinct values is treated as categorical by
#: :func:`mutual_information` (a code such as ``education_num`` then gets the same value as the category it codes).
DISCRETE_LEVELS = 20


#: A numeric column whose most frequent value covers more than this share of the rows (``capital_loss``: mostly 0)
#: keeps that value as a level of its own when it is binned.
TIED_SHARE = 0.5

#: How :func:`mutual_information` estimates each kind of column (the values of :func:`mi_estimators`).
ESTIMATORS = {
    "counts": "plug-in from counts of its values",
    "binned counts": f"plug-in from counts in at most {DISCRETE_LEVELS} quantile bins",
    "k-NN": "k-nearest-neighbour estimate (Kraskov et al. 2004)",
}


def _is_integer_valued(values: pd.Series) -> bool:
    v = values.dropna().to_numpy(float)
    return bool(np.all(v == np.round(v)))


def mi_estimators(df: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """Which estimate :func:`mutual_information` uses for each column (a key of ``ESTIMATORS``).

    * ``"counts"``: a category, or a numeric column with at most ``DISCRETE_LEVELS`` distinct values (a code);
    * ``"binned counts"``: a numeric column with more levels that is integer-valued (age, hours) or has one value on
      more than ``TIED_SHARE`` of the rows (capital loss: mostly 0). The k-NN estimator assumes continuous values;
      on such ties its answer depends on the tiny noise scikit-learn adds to break them. Counting the raw values
      instead would be biased upwards by about :math:`(|X|-1)/(2n\\ln 2)` bits (Miller 1955), so the values are binned;
    * ``"k-NN"``: any other numeric column (continuous values).
    """
    def kind(c: str) -> str:
        x = df[c]
        if not pd.api.types.is_numeric_dtype(x) or x.nunique() <= DISCRETE_LEVELS:
            return "counts"
        if _is_integer_valued(x) or x.value_counts(normalize=True).iloc[0] > TIED_SHARE:
            return "binned counts"
        return "k-NN"

    return pd.Series({c: kind(c) for c in columns}, name="mi_estimator", dtype=object)


def _bins(values: pd.Series) -> np.ndarray:
    """Codes (n,) of a numeric column in at most ``DISCRETE_LEVELS`` quantile bins of its values (equal values share
    a bin). If one value covers more than ``TIED_SHARE`` of the rows it is a level of its own and the other values fall
    into at most ``DISCRETE_LEVELS - 1`` quantile bins (``capital_loss``: 0, then bins of the losses)."""
    counts = values.value_counts(normalize=True)
    if counts.iloc[0] <= TIED_SHARE:
        return pd.qcut(values, DISCRETE_LEVELS, labels=False, duplicates="drop").to_numpy(int)
    rest = (values != counts.index[0]).to_numpy()
    codes = np.zeros(len(values), dtype=int)
    codes[rest] = 1 + pd.qcut(values[rest], DISCRETE_LEVELS - 1, labels=False, duplicates="drop").to_numpy(int)
    return codes


def mutual_information(df: pd.DataFrame, sensitive: str = "sex", columns: Sequence[str] | None = None, *,
                       seed: int = 0) -> pd.Series:
    """:math:`I(X_j; A)` in bits for each column ``j`` (sorted, largest first), estimated as
    :func:`mi_estimators` says: plug-in from counts for categories and codes (invariant under a one-to-one recoding
    of the values), plug-in from counts in quantile bins (:func:`_bins`) for integer-valued or heavily tied numeric
    columns, k-NN (Kraskov et al. 2004, ``seed`` for scikit-learn's tie-breaking noise) for continuous ones.
    """
    from sklearn.feature_selection import mutual_info_classif

    cols = list(columns) if columns is not None else [
        c for c in df.columns if c not in {sensitive, "label", "income", "source", "fnlwgt"}]  # fmt: skip
    y = _target(df[sensitive])
    kinds = mi_estimators(df, cols)
    X = np.column_stack([
        _bins(df[c]) if kinds[c] == "binned counts" else
        pd.factorize(df[c].astype(object))[0] if not pd.api.types.is_numeric_dtype(df[c]) else df[c].to_numpy(float)
        for c in cols
    ])  # fmt: skip
    mi = mutual_info_classif(X, y, discrete_features=(kinds != "k-NN").to_numpy(), random_state=seed)
    return pd.Series(mi / np.log(2), index=cols, name="mutual_information_bits").sort_values(ascending=False)


def entropy_bits(values) -> float:
    """Shannon entropy :math:`H(A) = -\\sum_a p(a) \\log_2 p(a)` in bits."""
    p = pd.Series(np.asarray(values, dtype=object)).value_counts(normalize=True).to_numpy()
    return float(-(p * np.log2(p)).sum())


def proxy_table(df: pd.DataFrame, sensitive: str = "sex", columns: Sequence[str] | None = None, *,
                seed: int = 0, folds: int = 3) -> pd.DataFrame:
    """Per column: ``auc`` (that column alone predicting the attribute), ``mi_bits`` and
    ``mi_share`` = :math:`I(X_j; A)/H(A)` (the fraction of the attribute's uncertainty it removes) and
    ``mi_estimator``, the estimate used (:func:`mi_estimators`)."""
    cols = list(columns) if columns is not None else [
        c for c in df.columns if c not in {sensitive, "label", "income", "source", "fnlwgt"}]  # fmt: skip
    mi = mutual_information(df, sensitive, cols, seed=seed)
    h = entropy_bits(df[sensitive])
    auc = {c: proxy_auc(df, sensitive, [c], seed=seed, folds=folds) for c in cols}
    out = pd.DataFrame({"auc": pd.Series(auc), "mi_bits": mi})
    out["mi_share"] = out["mi_bits"] / h
    out["mi_estimator"] = mi_estimators(df, cols)
    return out.sort_values("auc", ascending=False)


def text_proxy(texts: Sequence[str], sensitive, *, seed: int = 0, folds: int = 5, top: int = 10):
    """How well the words of ``texts`` predict ``sensitive``: ``(auc, top_words)``.

    Bag of words (binary, words of 2+ letters, numbers ignored) + logistic regression, cross-validated AUC;
    ``top_words`` is a DataFrame of the ``top`` words with the largest positive and negative
    coefficients when fitted on all the data (which words give the attribute away), each with ``texts``: the number
    of texts that contain it. A coefficient is an association, not an effect: a word in a handful of texts can get a
    large one, and a function word can stand for the phrases it occurs in.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    texts = list(texts)
    y = _target(sensitive, len(texts))
    vec = CountVectorizer(binary=True, token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b", min_df=2)
    X = vec.fit_transform(texts)
    auc = _cv_auc(X, y, seed=seed, folds=folds)
    clf = LogisticRegression(max_iter=2000).fit(X, y)
    coef = pd.Series(clf.coef_[0], index=vec.get_feature_names_out())
    labels = pd.factorize(pd.Series(np.asarray(sensitive, dtype=object)), sort=True)[1]
    hi, lo = coef.nlargest(top), coef.nsmallest(top)
    n_texts = pd.Series(np.asarray(X.sum(axis=0)).ravel(), index=coef.index)
    words = pd.DataFrame({f"word -> {labels[1]}": hi.index, "coef_1": hi.to_numpy().round(2),
                          "texts_1": n_texts[hi.index].to_numpy(), f"word -> {labels[0]}": lo.index,
                          "coef_0": lo.to_numpy().round(2), "texts_0": n_texts[lo.index].to_numpy()})
    return auc, words


def embedding_proxy_auc(X, sensitive, *, seed: int = 0, folds: int = 5) -> float:
    """Cross-validated AUC of logistic regression predicting ``sensitive`` from features ``X`` (n, d)."""
    X = np.asarray(X, dtype=np.float64)
    y = _target(sensitive, len(X))
    from sklearn.preprocessing import StandardScaler

    return _cv_auc(X, y, seed=seed, folds=folds, pipeline_first=StandardScaler())
