"""The plain-language verdict and the numbers its reasons cite."""

import pytest

from quant.optimisation import verdict as verdict_module
from quant.optimisation.verdict import Evidence, Thresholds, verdict_for

ROBUST = dict(in_sample_sharpe=1.6, out_of_sample_sharpe=1.2, out_of_sample_trades=120, positive_oos_folds=4,
              n_folds=5, holdout_sharpe=1.1, holdout_trades=45, dsr=0.97, pbo=0.12, n_trials=200,
              stability_drop=0.08)


def _verdict(**changes):
    return verdict_for(Evidence(**{**ROBUST, **changes}))


def test_a_candidate_passing_every_test_is_likely_robust_and_says_why():
    result = _verdict()
    assert result["text"] == "likely robust" and result["code"] == "likely_robust"
    assert result["reasons"] == [
        "Out-of-sample Sharpe 1.20 keeps 75 % of in-sample 1.60.",
        "4 of 5 out-of-sample folds were profitable.",
        "Hold-out Sharpe 1.10 over 45 trades on data the optimiser never saw.",
        "PBO 0.12: the in-sample best usually stays above median out of sample.",
        "Deflated Sharpe 0.97 >= 0.95 after 200 trials.",
        "The objective drops 8 % on average at neighbouring parameters.",
    ]


def test_high_pbo_means_likely_overfit():
    result = _verdict(pbo=0.62)
    assert result["text"] == "likely overfit"
    assert result["reasons"][0] == "PBO 0.62: the in-sample best usually ranks below median out of sample."


def test_deflated_sharpe_below_luck_is_a_red_flag_and_below_095_a_weakness():
    red = _verdict(dsr=0.41)
    assert red["text"] == "likely overfit"
    assert red["reasons"][0] == ("Deflated Sharpe 0.41 < 0.50 after 200 trials: "
                                 "the Sharpe is below what luck alone would produce.")
    weak = _verdict(dsr=0.80)
    assert weak["text"] == "promising but fragile"
    assert weak["reasons"][0] == "Deflated Sharpe 0.80 < 0.95 after 200 trials."


def test_out_of_sample_degradation_is_cited_as_a_percentage():
    result = _verdict(in_sample_sharpe=1.3, out_of_sample_sharpe=0.4)
    assert result["text"] == "promising but fragile"
    assert result["reasons"][0] == "Out-of-sample Sharpe 0.40 is 69 % below in-sample 1.30 (limit 50 %)."
    losing = _verdict(out_of_sample_sharpe=-0.3)
    assert losing["text"] == "likely overfit"
    assert losing["reasons"][0] == "Out-of-sample Sharpe -0.30 is at or below zero while in-sample was 1.60."


def test_too_few_holdout_trades_is_insufficient_evidence():
    result = _verdict(holdout_trades=12, holdout_sharpe=-0.4)
    assert result["text"] == "insufficient evidence"
    assert result["reasons"][:2] == ["Only 12 trades in the hold-out (need 30).",
                                     "Hold-out Sharpe -0.40 on so few trades says little either way."]


def test_a_losing_holdout_with_enough_trades_is_overfit():
    result = _verdict(holdout_sharpe=-0.2)
    assert result["text"] == "likely overfit"
    assert "Hold-out Sharpe -0.20: it lost money on data the optimiser never saw." in result["reasons"]


def test_no_edge_missing_statistics_and_few_trials_are_insufficient():
    assert _verdict(in_sample_sharpe=-0.2)["reasons"][0] == \
        "In-sample Sharpe -0.20: the best configuration found has no edge to validate."
    assert "PBO could not be computed (needs at least two completed configurations)." in _verdict(pbo=None)["reasons"]
    few = _verdict(n_trials=8)
    assert few["text"] == "insufficient evidence"
    assert few["reasons"][0] == "Only 8 trials: too few for the selection statistics (need 20)."


def test_fragile_stability_and_fold_share():
    result = _verdict(stability_drop=0.45, positive_oos_folds=2)
    assert result["text"] == "promising but fragile"
    assert result["reasons"][:2] == [
        "Only 2 of 5 out-of-sample folds were profitable (need 60 %).",
        "The objective drops 45 % on average at neighbouring parameters (limit 30 %): the optimum is a narrow peak.",
    ]


def test_thresholds_are_named_constants_and_overridable():
    assert Thresholds().pbo_overfit == verdict_module.PBO_OVERFIT == 0.5
    assert Thresholds().dsr_min == verdict_module.DSR_MIN == 0.95
    evidence = Evidence(**{**ROBUST, "pbo": 0.62})
    assert verdict_for(evidence, pbo_overfit=0.7, pbo_robust_max=0.65)["text"] == "likely robust"
    strict = verdict_for(Evidence(**ROBUST), Thresholds(dsr_min=0.99))
    assert strict["text"] == "promising but fragile" and strict["thresholds"]["dsr_min"] == 0.99
    with pytest.raises(TypeError, match="unknown verdict threshold"):
        verdict_for(evidence, pbo_limit=0.1)
