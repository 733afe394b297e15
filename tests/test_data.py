import numpy as np
import pandas as pd
import pytest

from helpers import data


def test_checksums_match_the_datasheet():
    sums = data.verify_checksums()
    readme = (data.DATA_DIR / "README.md").read_text(encoding="utf-8")
    for name, digest in sums.items():
        assert digest == data.CHECKSUMS[name]
        assert digest in readme, f"data/README.md must state the sha256 of {name}"


def test_checksum_mismatch_is_reported(tmp_path):
    for name in data.CHECKSUMS:
        (tmp_path / name).write_bytes(b"not the real file")
    with pytest.raises(ValueError, match="changed or corrupted"):
        data.verify_checksums(tmp_path)


def test_adult_row_counts_raw_and_clean():
    assert len(data.load_adult("train", dropna=False)) == 32_561
    assert len(data.load_adult("test", dropna=False)) == 16_281
    assert len(data.load_adult("train")) == 30_162
    assert len(data.load_adult("test")) == 15_060
    assert len(data.load_adult("all")) == 45_222


def test_adult_columns_and_types():
    df = data.load_adult("test")
    for col in data.ADULT_NUMERIC:
        assert df[col].dtype == np.int64, col
    for col in data.ADULT_CATEGORICAL:
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col
    assert set(df["income"].astype(str)) == {"<=50K", ">50K"}  # trailing dots stripped
    assert set(df["label"]) == {0, 1}
    assert set(df["sex"].astype(str)) == {"Male", "Female"}
    assert not df.isna().any().any()
    # base rate of the official test file (after dropping missing values): 3,700 of 15,060
    assert df["label"].sum() == 3_700


def test_missing_values_are_question_marks_in_three_columns():
    raw = data.load_adult("train", dropna=False)
    assert raw.isna().sum()[lambda s: s > 0].to_dict() == {"workclass": 1836, "occupation": 1843, "native_country": 583}


def test_bad_split_name():
    with pytest.raises(ValueError, match="split must be"):
        data.load_adult("validation")


def test_compas_filter_matches_propublica():
    df = data.load_compas()
    assert len(df) == 6_172
    assert len(data.load_compas(propublica_filter=False)) == 7_214
    assert df["label"].isin([0, 1]).all()
    assert round(df["label"].mean(), 4) == 0.4551


def test_weat_lists():
    tests = data.load_weat()
    assert len(tests) == 10
    t6 = tests[5]
    assert t6.targets == ("Male names", "Female names") and t6.attributes == ("Career", "Family")
    assert len(t6.X) == len(t6.Y) == len(t6.A) == len(t6.B) == 8
    assert "Jay" not in tests[3].X  # the paper's removed words are left out
    # two reference values: the human IAT d of the replicated study, and Caliskan et al.'s GloVe d (Table 1)
    assert [t.iat_d for t in tests] == [1.35, 1.66, 1.17, None, None, 0.72, 0.82, 1.47, 1.01, 1.42]
    assert [t.glove_d for t in tests] == [1.50, 1.53, 1.41, 1.50, 1.28, 1.81, 1.06, 1.24, 1.38, 1.21]
    assert "Greenwald" in tests[0].iat_reference and "Bertrand" in tests[3].iat_reference
    assert "Monteith" in tests[8].iat_reference  # the transcription's reference for WEAT 9 was a vector-space survey
    assert "failure" in tests[9].B and "failur" not in tests[9].B  # the transcription's typo, corrected
    assert tests[9].B == tests[4].B  # WEAT 5 and 10 share Nosek et al.'s pleasant/unpleasant words


def test_splits_are_deterministic_and_stratified(monkeypatch):
    monkeypatch.setenv("WORKBOOK_MODE", "gpu")  # full sizes
    a = data.adult_splits(seed=0)
    b = data.adult_splits(seed=0)
    c = data.adult_splits(seed=1)
    assert a.sizes() == {"train": 27_145, "val": 3_017, "test": 15_060}
    pd.testing.assert_frame_equal(a.train, b.train)
    assert not a.train.equals(c.train)
    share = lambda df: df.groupby(["label", "sex"], observed=True).size() / len(df)  # noqa: E731
    assert np.allclose(share(a.train), share(a.val), atol=2e-3)


def test_split_sizes_follow_the_mode(monkeypatch):
    monkeypatch.setenv("WORKBOOK_MODE", "smoke")
    from helpers.config import size

    s = data.adult_splits()
    assert s.sizes() == {"train": size("adult_train_rows"), "val": size("adult_val_rows"), "test": size("adult_test_rows")}


def test_empty_frame_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        data.stratified_split(data.load_adult("test").iloc[:0], 0.5)
    with pytest.raises(ValueError, match="empty"):
        data.serialize_frame(pd.DataFrame())
    with pytest.raises(ValueError, match="no such column"):
        data.stratified_split(pd.DataFrame({"a": [1, 2]}), 0.5)


FIRST = ("A 39-year-old white man, never married, works 40 hours a week in an administrative clerical job for the "
         "state government; highest education: bachelor's degree. Household role: not in a family. Born in the "
         "United States. Capital gain: $2,174; capital loss: $0.")


def test_serializer_fixed_record():
    df = data.load_adult("train")
    assert data.serialize(df.iloc[0]) == FIRST
    no_words = data.serialize(df.iloc[0], sex_words=False, race_words=False)
    assert no_words.startswith("A 39-year-old person, never married,")
    second = data.serialize(df.iloc[1], sex_words=False)
    assert "husband" in second and "man" not in second.replace(",", " ").split()  # the proxy survives


def test_serializer_rejects_incomplete_record():
    with pytest.raises(ValueError, match="lacks the column"):
        data.serialize({"age": 30})


def test_one_hot_shapes():
    s = data.load_adult("test").iloc[:500]
    a, b = data.one_hot(s, s.iloc[:10], drop=("sex", "race"))
    assert a.shape[0] == 500 and b.shape == (10, a.shape[1])
    assert a.dtype == np.float32
