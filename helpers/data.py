"""Real data, shipped offline: UCI Adult, ProPublica COMPAS and the WEAT word lists.

All files live in ``data/`` (see ``data/README.md``, the datasheet: source, licence, citation,
columns, known problems, sha256). Nothing here touches the network.

Adult (Becker & Kohavi 1996, UCI Machine Learning Repository, CC BY 4.0):
``adult.data`` has 32,561 records and ``adult.test`` 16,281. Missing values are written ``?`` in
``workclass``, ``occupation`` and ``native_country``; by default we drop those rows, leaving
30,162 and 15,060. The test file's labels carry a trailing dot (``>50K.``), which we strip.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .config import DATA_DIR

ADULT_COLUMNS: list[str] = [
    "age", "workclass", "fnlwgt", "education", "education_num", "marital_status", "occupation",
    "relationship", "race", "sex", "capital_gain", "capital_loss", "hours_per_week",
    "native_country", "income",
]  # fmt: skip
ADULT_CATEGORICAL: list[str] = [
    "workclass", "education", "marital_status", "occupation", "relationship", "race", "sex",
    "native_country",
]  # fmt: skip
ADULT_NUMERIC: list[str] = [
    "age", "fnlwgt", "education_num", "capital_gain", "capital_loss", "hours_per_week",
]  # fmt: skip

#: sha256 of every shipped data file; ``tests/test_data.py`` and :func:`verify_checksums` check them.
CHECKSUMS: dict[str, str] = {
    "adult.data.gz": "c7a2b4716a97f930123e0baf879188d701e798172631a654fc703d4b082907f3",
    "adult.test.gz": "8a2c1bffa6e7ce5abfa43881ae5e87c4311ebc2b3cd526c9c40a43f19f06f799",
    "adult.names": "c248284c0b5de30c9e1958d6cdd168a34a654758b620e68f46aefa83fc0a576a",
    "compas-scores-two-years.csv.gz": "706137877c1ffafbb8580f2523644bbe34e639dad00922abc6079f8f31d75514",
    "weat.json": "f94fb1de585933313447ace32e088f2db6f2a26499b4d1be48ee31b6f2c1891d",
    "weat_glove.json": "fb0fd58d8386d84d5dbca6b2f32646f6fda8517e43699c70ba1480ff8c3a7d2e",
}


def sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_checksums(data_dir: str | Path = DATA_DIR) -> dict[str, str]:
    """Check every shipped file against :data:`CHECKSUMS`; return ``{file: sha256}``.

    Raises:
        ValueError: naming the file whose bytes changed or that is missing.
    """
    data_dir = Path(data_dir)
    out: dict[str, str] = {}
    for name, expected in CHECKSUMS.items():
        path = data_dir / name
        if not path.exists():
            raise ValueError(f"Data file {path} is missing; restore it with `git checkout -- data/`.")
        got = sha256(path)
        if got != expected:
            raise ValueError(
                f"{name} has sha256 {got}, expected {expected}: the file was changed or corrupted. "
                "Restore it with `git checkout -- data/`."
            )
        out[name] = got
    return out


def _check_frame(df: pd.DataFrame, name: str = "data frame") -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"Expected a pandas DataFrame for {name}, got {type(df).__name__}.")
    if len(df) == 0:
        raise ValueError(f"The {name} is empty: there is nothing to work with.")


def _read_adult_file(path: Path, *, skiprows: int) -> pd.DataFrame:
    df = pd.read_csv(
        path, names=ADULT_COLUMNS, skipinitialspace=True, na_values="?", skiprows=skiprows,
        compression="gzip",
    )  # fmt: skip
    df["income"] = df["income"].str.rstrip(".")
    return df


def load_adult(split: str = "train", *, dropna: bool = True, data_dir: str | Path = DATA_DIR) -> pd.DataFrame:
    """Load UCI Adult as a cleaned DataFrame.

    Args:
        split: ``"train"`` (the file ``adult.data``), ``"test"`` (``adult.test``) or ``"all"``.
        dropna: drop rows with a missing (``?``) workclass, occupation or native country.

    Returns:
        One row per person with the 15 original columns (snake_case), categoricals as ``category``,
        plus ``label`` (int, 1 = income > 50K) and ``source`` (``"train"``/``"test"``).
        Row counts: 32,561 / 16,281 raw; 30,162 / 15,060 after ``dropna``.
    """
    data_dir = Path(data_dir)
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}.")
    parts = []
    if split in ("train", "all"):
        parts.append(_read_adult_file(data_dir / "adult.data.gz", skiprows=0).assign(source="train"))
    if split in ("test", "all"):
        # The first line of adult.test is "|1x3 Cross validator", not a record.
        parts.append(_read_adult_file(data_dir / "adult.test.gz", skiprows=1).assign(source="test"))
    df = pd.concat(parts, ignore_index=True)
    if dropna:
        df = df.dropna().reset_index(drop=True)
    for col in ADULT_NUMERIC:
        df[col] = df[col].astype("int64")
    for col in ADULT_CATEGORICAL + ["income", "source"]:
        df[col] = df[col].astype("category")
    df["label"] = (df["income"] == ">50K").astype("int64")
    return df


def load_compas(*, propublica_filter: bool = True, data_dir: str | Path = DATA_DIR) -> pd.DataFrame:
    """Load ProPublica's COMPAS two-year recidivism data (7,214 rows raw).

    With ``propublica_filter`` (default) apply ProPublica's own filter from their analysis
    notebook: charge date within 30 days of screening, ``is_recid != -1``, no ordinary traffic
    offences (``c_charge_degree != 'O'``) and a known score, leaving 6,172 rows.
    Adds ``label`` = ``two_year_recid`` (1 = re-offended within two years).
    """
    df = pd.read_csv(Path(data_dir) / "compas-scores-two-years.csv.gz", compression="gzip")
    df = df.loc[:, ~df.columns.str.contains(r"\.\d+$")]  # drop duplicated column copies
    if propublica_filter:
        keep = (
            df["days_b_screening_arrest"].between(-30, 30)
            & (df["is_recid"] != -1)
            & (df["c_charge_degree"] != "O")
            & (df["score_text"] != "N/A")
        )
        df = df[keep].reset_index(drop=True)
    for col in ("sex", "race", "age_cat", "c_charge_degree", "score_text"):
        df[col] = df[col].astype("category")
    df["label"] = df["two_year_recid"].astype("int64")
    return df


@dataclass(frozen=True)
class WeatTest:
    """One WEAT test of Caliskan et al. (2017): two target word sets, two attribute sets, and two reference d values.

    ``iat_d`` is the *human* finding the test replicates: the Implicit Association Test effect size of the
    psychology study in ``iat_reference`` (Greenwald et al. 1998; Nosek et al. 2002; Monteith & Pettit 2011), or
    None where the original finding is not an IAT (WEAT 4 and 5 replicate Bertrand & Mullainathan's 2004 field
    experiment on call-backs). ``glove_d`` is the WEAT effect size Caliskan et al. measured on GloVe word vectors
    (Table 1 of the paper). The two are different quantities on different scales: people's reaction times vs
    cosine similarities of word vectors.
    """

    name: str
    targets: tuple[str, str]
    attributes: tuple[str, str]
    X: tuple[str, ...]
    Y: tuple[str, ...]
    A: tuple[str, ...]
    B: tuple[str, ...]
    iat_d: float | None
    iat_reference: str
    glove_d: float | None


def load_weat(data_dir: str | Path = DATA_DIR) -> list[WeatTest]:
    """The ten WEAT word-list tests of Caliskan, Bryson & Narayanan (2017), Science 356:183.

    Word lists and the original (human IAT) findings come from ``weat.json``; the GloVe effect sizes of the paper's
    Table 1 and two corrections of that transcription (the IAT source of WEAT 9, the word "failur" in WEAT 10)
    from ``weat_glove.json`` (see ``data/README.md``). Words that the original paper removed (the ``remove``
    lists) are left out.
    """
    raw = json.loads((Path(data_dir) / "weat.json").read_text(encoding="utf-8"))
    extra = json.loads((Path(data_dir) / "weat_glove.json").read_text(encoding="utf-8"))
    fixes = extra["corrections"]
    tests = []
    for i, t in enumerate(raw, start=1):
        respell = fixes["words"].get(str(i), {})
        words = lambda part, respell=respell: tuple(  # noqa: E731 - the paper's removed words out, typos corrected
            respell.get(w, w) for w in part["words"] if w not in set(part.get("remove", [])))
        x, y = t["first_target"], t["second_target"]
        a, b = t["first_attribute"], t["second_attribute"]
        original = t.get("original_finding", {})
        d = original.get("d", "")
        tests.append(
            WeatTest(
                name=f"WEAT {i}: {x['name']} vs {y['name']} / {a['name']} vs {b['name']}",
                targets=(x["name"], y["name"]), attributes=(a["name"], b["name"]),
                X=words(x), Y=words(y), A=words(a), B=words(b),
                iat_d=float(d) if d else None,
                iat_reference=fixes["iat_reference"].get(str(i), original.get("Ref", "")),
                glove_d=extra["glove_d"].get(str(i)),
            )  # fmt: skip
        )
    return tests


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------


@dataclass
class Splits:
    """Train / validation / test frames (indices reset)."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame

    def __iter__(self):
        return iter((self.train, self.val, self.test))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def stratified_split(
    df: pd.DataFrame,
    fraction: float,
    *,
    stratify: Sequence[str] = ("label", "sex"),
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into (rest, part) with ``part`` holding ``fraction`` of every stratum.

    Strata are the combinations of the ``stratify`` columns (default label x sex), so each cell's
    share is the same in both parts up to rounding. Deterministic for a given ``seed``.
    """
    _check_frame(df)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}.")
    missing = [c for c in stratify if c not in df.columns]
    if missing:
        raise ValueError(f"Cannot stratify on {missing}: no such column(s) in the frame.")
    from sklearn.model_selection import train_test_split

    strata = df[list(stratify)].astype(str).agg("|".join, axis=1)
    counts = strata.value_counts()
    if (counts < 2).any():
        raise ValueError(f"Strata with a single row cannot be split: {list(counts[counts < 2].index)}.")
    rest, part = train_test_split(df, test_size=fraction, stratify=strata, random_state=seed)
    return rest.reset_index(drop=True), part.reset_index(drop=True)


def adult_splits(
    *, val_fraction: float = 0.1, seed: int = 0, mode: str | None = None, dropna: bool = True
) -> Splits:
    """The workbook's Adult splits: train/validation from ``adult.data``, test = ``adult.test``.

    The official test file stays the test set, so figures compare with the literature. The
    validation part is a stratified (label x sex) ``val_fraction`` of the training file. The
    run mode then subsamples each part (stratified, same seed) to the sizes in
    :data:`helpers.config.SIZES` (``adult_train_rows`` etc.; ``None`` = all rows).
    """
    from .config import size

    train_all = load_adult("train", dropna=dropna)
    test = load_adult("test", dropna=dropna)
    train, val = stratified_split(train_all, val_fraction, seed=seed)
    out = []
    for frame, key in ((train, "adult_train_rows"), (val, "adult_val_rows"), (test, "adult_test_rows")):
        n = size(key, mode)
        out.append(subsample(frame, n, seed=seed))
    return Splits(*out)


def subsample(df: pd.DataFrame, n: int | None, *, stratify: Sequence[str] = ("label", "sex"), seed: int = 0) -> pd.DataFrame:
    """A stratified sample of ``n`` rows (all rows if ``n`` is None or >= len(df))."""
    _check_frame(df)
    if n is None or n >= len(df):
        return df.reset_index(drop=True)
    if n <= 0:
        raise ValueError(f"Cannot take {n} rows: ask for at least one.")
    _, part = stratified_split(df, n / len(df), stratify=stratify, seed=seed)
    return part


# --------------------------------------------------------------------------------------------
# Serialisation: a record becomes a sentence a language model reads
# --------------------------------------------------------------------------------------------

_WORKCLASS = {
    "Private": "for a private company",
    "Self-emp-not-inc": "as a self-employed worker",
    "Self-emp-inc": "in their own incorporated business",
    "Federal-gov": "for the federal government",
    "Local-gov": "for the local government",
    "State-gov": "for the state government",
    "Without-pay": "without pay",
    "Never-worked": "having never worked",
}
_OCCUPATION = {
    "Adm-clerical": "an administrative clerical job",
    "Armed-Forces": "the armed forces",
    "Craft-repair": "a craft and repair job",
    "Exec-managerial": "an executive managerial job",
    "Farming-fishing": "a farming and fishing job",
    "Handlers-cleaners": "a handlers and cleaners job",
    "Machine-op-inspct": "a machine operator and inspector job",
    "Other-service": "a service job",
    "Priv-house-serv": "a private household service job",
    "Prof-specialty": "a professional specialty job",
    "Protective-serv": "a protective service job",
    "Sales": "a sales job",
    "Tech-support": "a technical support job",
    "Transport-moving": "a transport and moving job",
}
_EDUCATION = {
    "Preschool": "preschool", "1st-4th": "1st to 4th grade", "5th-6th": "5th to 6th grade",
    "7th-8th": "7th to 8th grade", "9th": "9th grade", "10th": "10th grade", "11th": "11th grade",
    "12th": "12th grade, no diploma", "HS-grad": "high school diploma",
    "Some-college": "some college", "Assoc-voc": "vocational associate degree",
    "Assoc-acdm": "academic associate degree", "Bachelors": "bachelor's degree",
    "Masters": "master's degree", "Prof-school": "professional school degree",
    "Doctorate": "doctorate",
}  # fmt: skip
_MARITAL = {
    "Never-married": "never married", "Married-civ-spouse": "married",
    "Married-AF-spouse": "married to a spouse in the armed forces",
    "Married-spouse-absent": "married with the spouse absent", "Divorced": "divorced",
    "Separated": "separated", "Widowed": "widowed",
}  # fmt: skip
_RELATIONSHIP = {
    "Husband": "husband", "Wife": "wife", "Own-child": "child of the householder",
    "Not-in-family": "not in a family", "Unmarried": "unmarried", "Other-relative": "other relative",
}  # fmt: skip
_RACE = {
    "White": "white", "Black": "Black", "Asian-Pac-Islander": "Asian or Pacific Islander",
    "Amer-Indian-Eskimo": "American Indian or Eskimo", "Other": "other-race",
}  # fmt: skip
_SEX = {"Male": "man", "Female": "woman"}

#: Words the serializer uses to name sex and race: used to study what removing them changes.
SEX_WORDS: tuple[str, ...] = ("man", "woman")
RACE_WORDS: tuple[str, ...] = tuple(_RACE.values())


def _country(c: str) -> str:
    special = {"United-States": "the United States", "Outlying-US(Guam-USVI-etc)": "an outlying US territory",
               "Holand-Netherlands": "the Netherlands", "Trinadad&Tobago": "Trinidad and Tobago",
               "Dominican-Republic": "the Dominican Republic", "Columbia": "Colombia", "Hong": "Hong Kong",
               "South": "an unnamed country ('South')"}  # fmt: skip
    return special.get(c, c.replace("-", " "))


def serialize(record: pd.Series | dict, *, sex_words: bool = True, race_words: bool = True) -> str:
    """Turn one Adult record into an English sentence.

    Example (first row of ``adult.data``)::

        A 39-year-old white man, never married, works 40 hours a week in an administrative
        clerical job for the state government; highest education: bachelor's degree.
        Household role: not in a family. Born in the United States. Capital gain: $2,174;
        capital loss: $0.

    Args:
        sex_words: keep "man"/"woman" (else "person").
        race_words: keep the race word (else omit it).

    Dropping these words does *not* remove sex or race from the text: "husband"/"wife",
    occupation, hours and more remain as proxies (notebook 02 measures how much).
    """
    r = record
    missing = [c for c in ("age", "race", "sex", "marital_status", "hours_per_week", "occupation",
                           "workclass", "education", "relationship", "native_country",
                           "capital_gain", "capital_loss") if c not in r]  # fmt: skip
    if missing:
        raise ValueError(f"The record lacks the column(s) {missing} that the sentence needs.")
    person = _SEX.get(str(r["sex"]), "person") if sex_words else "person"
    race = f"{_RACE.get(str(r['race']), str(r['race']))} " if race_words else ""
    hours = int(r["hours_per_week"])
    occupation = _OCCUPATION.get(str(r["occupation"]), "an unknown job")
    workclass = _WORKCLASS.get(str(r["workclass"]), "for an unknown employer")
    return (
        f"A {int(r['age'])}-year-old {race}{person}, {_MARITAL.get(str(r['marital_status']), 'of unknown marital status')}, "
        f"works {hours} hour{'s' if hours != 1 else ''} a week in {occupation} {workclass}; "
        f"highest education: {_EDUCATION.get(str(r['education']), str(r['education']))}. "
        f"Household role: {_RELATIONSHIP.get(str(r['relationship']), str(r['relationship']))}. "
        f"Born in {_country(str(r['native_country']))}. "
        + (f"Capital gain: ${int(r['capital_gain']):,}; capital loss: ${int(r['capital_loss']):,}."
           if int(r["capital_gain"]) or int(r["capital_loss"]) else "No capital gain or loss.")
    )


def serialize_frame(df: pd.DataFrame, *, sex_words: bool = True, race_words: bool = True) -> list[str]:
    """:func:`serialize` every row of ``df``; returns a list of sentences in row order."""
    _check_frame(df)
    return [serialize(r, sex_words=sex_words, race_words=race_words) for r in df.to_dict("records")]


def one_hot(train: pd.DataFrame, *others: pd.DataFrame, drop: Iterable[str] = ()) -> list[np.ndarray]:
    """One-hot categorical + standardised numeric features (fit on ``train``), for tabular baselines.

    ``drop`` lists columns to leave out (e.g. ``("sex", "race")``). ``label``, ``income``,
    ``source`` and ``fnlwgt`` (a sampling weight, not a person's attribute) are always excluded.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    _check_frame(train, "training frame")
    drop = set(drop) | {"fnlwgt"}
    cats = [c for c in ADULT_CATEGORICAL if c not in drop]
    nums = [c for c in ADULT_NUMERIC if c not in drop]
    ct = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cats),
         ("num", StandardScaler(), nums)]
    )  # fmt: skip
    first = ct.fit_transform(train[cats + nums].astype({c: str for c in cats}))
    rest = [ct.transform(o[cats + nums].astype({c: str for c in cats})) for o in others]
    return [first.astype(np.float32)] + [r.astype(np.float32) for r in rest]


def open_text(path: str | Path) -> str:
    """Read a (possibly gzipped) text file from ``data/``."""
    path = Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    return path.read_text(encoding="utf-8")
