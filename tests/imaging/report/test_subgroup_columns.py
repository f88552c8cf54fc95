"""Subgroups only on categorical columns with few levels; ages in bands; population, view and sex first.

Read on the real NIH adult manifest (its columns are what ``evaluate --data nih_adult/manifest.csv``
carries into predictions.csv) with generated probabilities."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxr_model.imaging.report import analysis as A
from tests.conftest import _need


@pytest.fixture(scope="module")
def nih_predictions(settings):
    manifest = _need(settings.nih_adult_dir / "manifest.csv", "NIH adult manifest")
    df = pd.read_csv(manifest, keep_default_na=False, na_values=[""])
    rng = np.random.default_rng(0)
    df["label"] = (df["label"] == "PNEUMONIA").astype(int)
    df["probability"] = np.clip(0.3 * df["label"] + 0.7 * rng.random(len(df)), 0, 1)
    df["predicted"] = (df["probability"] >= 0.5).astype(int)
    df["ood"], df["ood_score"] = 0, rng.random(len(df)) * 20
    return df


@pytest.mark.parametrize("age, band", [(0, "0"), (0.5, "0"), (1, "1-4"), (11.9, "5-11"), (17, "12-17"), (18, "18-29"),
                                       (29.99, "18-29"), (30, "30-39"), (69, "60-69"), (70, "70+"), (110, "70+"),
                                       (-1, ""), ("abc", ""), (None, ""), (float("nan"), "")])
def test_age_band_edges(age, band):
    assert A.age_band(age) == band


def test_nih_subgroups_are_population_view_sex_age_band_then_other_categoricals(nih_predictions):
    frame = A.subgroup_frame(nih_predictions)
    cols = A.subgroup_columns(frame)
    # every film is an adult's: population has one level here, so it is no subgroup
    assert cols[:3] == ["view", "sex", "age band"] and "population" not in cols
    assert set(cols) <= {"view", "sex", "age band", "confirmed_by", "rsna_class"}
    for not_a_subgroup in ("age", "patient_id", "sha256", "boxes_xywh", "nih_labels", "ood", "ood_score", "path"):
        assert not_a_subgroup not in cols
    ages = pd.to_numeric(nih_predictions["age"])
    expected = {b: int(((ages >= lo) & (ages < hi)).sum()) for lo, hi, b in A.AGE_BANDS if ((ages >= lo) & (ages < hi)).any()}
    assert frame["age band"].value_counts().to_dict() == expected
    assert set(frame["population"]) == {"adult"}


def test_population_is_derived_from_age_where_not_given(nih_predictions):
    df = nih_predictions.head(40).copy()
    df["age"] = [5, 40] * 20
    frame = A.subgroup_frame(df)
    assert frame["population"].tolist() == ["child", "adult"] * 20
    assert "population" in A.subgroup_columns(frame)
    a = A.analyse(df, 0.5, "mixed", n_resamples=50)
    assert list(a.subgroups)[:4] == ["population", "view", "sex", "age band"]
    assert sum(r["n"] for r in a.subgroups["population"]) == 40


def test_a_small_set_never_turns_numbers_into_subgroups(nih_predictions):
    df = nih_predictions.head(12)  # few rows: age, patient_id, ood_score have <= 12 distinct values here
    cols = A.subgroup_columns(A.subgroup_frame(df))
    assert not {"age", "patient_id", "ood_score", "orig_width"} & set(cols)


def test_films_scored_on_the_pooled_map_are_their_own_population_group_and_labels_are_human(nih_predictions):
    df = nih_predictions.head(30).copy()
    df["population"] = ["adult"] * 10 + ["child"] * 10 + [None] * 10
    df["population_source"] = ["image_estimate"] * 20 + ["pooled"] * 8 + ["dicom_age"] * 2  # 2 truly unknown
    frame = A.subgroup_frame(df)
    assert frame["population"].value_counts().to_dict() == {"adult": 10, "child": 10, "pooled (uncertain)": 8}
    assert frame["population"].isna().sum() == 2
    assert df["population"].isna().sum() == 10  # the caller's frame is not changed
    assert A.subgroup_label("source_population") == "population in the data set"
    assert A.subgroup_label("population").startswith("population the model used")
    assert A.subgroup_label("confirmed_by") == "label source" and A.subgroup_label("rsna_class") == "rsna class"


def test_a_set_mixing_populations_says_so_and_one_population_says_nothing(nih_predictions):
    df = nih_predictions.head(12).copy()
    assert A.mixed_population_note(A.data_summary(df)) is None  # no source_population column
    df["source_population"] = ["child"] * 9 + ["adult"] * 3
    summary = A.data_summary(df)
    assert summary["populations"] == {"child": 9, "adult": 3}
    note = A.mixed_population_note(summary)
    assert note.startswith("This set mixes populations (child 9, adult 3): the pooled metrics weigh them")
    assert note.endswith("by population in the data set.")
    df["source_population"] = "adult"
    assert A.mixed_population_note(A.data_summary(df)) is None
