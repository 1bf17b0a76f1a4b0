"""The confidence benchmark's figures: ROC AUC and CER on each side of a threshold."""

import math

import pytest

from benchmarks.confidence_benchmark import figures, roc_auc


def test_auc_is_one_when_every_right_read_is_more_confident():
    assert roc_auc([0.9, 0.8, 0.3, 0.2], [True, True, False, False]) == 1.0
    assert roc_auc([0.2, 0.3, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5
    assert math.isnan(roc_auc([0.5], [True]))


def test_threshold_splits_cer_into_kept_and_rejected_reads():
    truths = ["abcd", "abcd", "abcd", "abcd"]
    reads = ["abcd", "abcd", "abxd", "wxyz"]
    result = figures(truths, reads, [0.9, 0.8, 0.4, 0.1], thresholds=(0.5,))
    assert result["auc"] == 1.0 and result["exact"] == 0.5
    kept, rejected = (
        result["by_threshold"]["0.500"]["above"],
        result["by_threshold"]["0.500"]["below"],
    )
    assert kept == {"share": 0.5, "cer": 0.0, "exact": 1.0}
    assert rejected["share"] == 0.5 and rejected["cer"] == pytest.approx(5 / 8)


def test_rank_correlation_is_negative_when_confident_lines_have_fewer_errors():
    result = figures(["abcd"] * 3, ["abcd", "abxd", "wxyz"], [0.9, 0.5, 0.1])
    assert result["spearman_confidence_line_cer"] == pytest.approx(-1.0)
