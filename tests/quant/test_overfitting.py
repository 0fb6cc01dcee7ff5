"""Deflated Sharpe ratio and PBO against worked examples and constructed cases."""

import itertools
import math

import numpy as np
import pytest

from quant.optimisation.overfitting import (EULER_GAMMA, BlockStats, deflated_sharpe_ratio,
                                                 dsr_report, expected_max_sharpe, pbo_cscv,
                                                 probabilistic_sharpe, sharpe_moments)


def test_deflated_sharpe_reproduces_bailey_and_lopez_de_prado_numerical_example():
    """Bailey & López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
    Backtest Overfitting and Non-Normality", J. Portfolio Management 40(5), 2014, section
    "A numerical example": a strategist runs N = 100 independent trials; the best has an
    annualised Sharpe of 2.5 over 5 years of daily returns (T = 1250, 250 days a year);
    the variance of the trials' annualised Sharpes is 1/2; returns have skewness -3 and
    kurtosis 10. The paper converts to daily units (SR = 2.5/sqrt(250) = 0.1581,
    V[SR] = 0.5/250), finds SR0 = 0.1132 per day (≈ 1.79 annualised) and DSR = 0.9004.
    """
    sr = 2.5 / math.sqrt(250)
    variance = 0.5 / 250
    sr0 = expected_max_sharpe(variance, 100)
    assert sr0 == pytest.approx(0.1132, abs=5e-4)
    assert sr0 * math.sqrt(250) == pytest.approx(1.79, abs=0.01)
    dsr = deflated_sharpe_ratio(sr, n_obs=1250, skew=-3.0, kurtosis=10.0, sr_variance=variance, n_trials=100)
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def _normal_quantile(p: float) -> float:
    lo, hi = -10.0, 10.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def test_expected_max_sharpe_formula_and_edge_cases():
    # E[max] = sqrt(V) ((1-γ) Z^-1(1 - 1/N) + γ Z^-1(1 - 1/(N e))); for N = 10, V = 1, with the
    # normal quantiles found independently by bisection on erf:
    z1, z2 = _normal_quantile(0.9), _normal_quantile(1 - 1 / (10 * math.e))
    assert z1 == pytest.approx(1.2815515655446004, abs=1e-9)
    assert expected_max_sharpe(1.0, 10) == pytest.approx((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2, rel=1e-9)
    assert expected_max_sharpe(4.0, 10) == pytest.approx(2 * expected_max_sharpe(1.0, 10))
    assert expected_max_sharpe(0.3, 1) == 0.0  # no selection with a single trial
    assert expected_max_sharpe(0.3, 1000) > expected_max_sharpe(0.3, 100) > expected_max_sharpe(0.3, 10)
    with pytest.raises(ValueError):
        expected_max_sharpe(-1.0, 10)


def test_probabilistic_sharpe_matches_the_normal_case_by_hand():
    # Normal returns (skew 0, kurtosis 3): z = SR sqrt(T-1) / sqrt(1 + SR²/2).
    sr, n = 0.1, 101
    z = sr * 10 / math.sqrt(1 + 0.5 * sr * sr)
    assert probabilistic_sharpe(sr, n_obs=n) == pytest.approx(0.5 * (1 + math.erf(z / math.sqrt(2))))
    assert math.isnan(probabilistic_sharpe(sr, n_obs=1))
    # With one trial the deflated Sharpe is the PSR against zero.
    assert deflated_sharpe_ratio(sr, n_obs=n, skew=0.0, kurtosis=3.0, sr_variance=0.01, n_trials=1) == \
        pytest.approx(probabilistic_sharpe(sr, n_obs=n))


def test_dsr_report_on_returns_uses_per_bar_moments():
    rng = np.random.default_rng(5)
    returns = rng.normal(0.001, 0.01, 2000)
    sr, skew, kurt, n = sharpe_moments(returns)
    assert sr == pytest.approx(returns.mean() / returns.std(ddof=1))
    assert n == 2000 and abs(skew) < 0.2 and kurt == pytest.approx(3.0, abs=0.3)
    trial_sharpes = rng.normal(0, 0.02, 50)
    report = dsr_report(returns, trial_sharpes, n_trials=80, bars_per_year=365)
    expected = deflated_sharpe_ratio(sr, n_obs=2000, skew=skew, kurtosis=kurt,
                                     sr_variance=float(np.var(trial_sharpes, ddof=1)), n_trials=80)
    assert report["value"] == pytest.approx(expected)
    assert report["sharpe_annualised"] == pytest.approx(sr * math.sqrt(365))
    assert report["n_trials"] == 80 and report["n_configs"] == 50
    assert dsr_report(returns, [0.1])["value"] is None  # no variance across a single trial


# --------------------------------------------------------------------------- PBO

def test_pbo_hand_example_two_configurations_two_partitions():
    """S = 2 blocks → C(2, 1) = 2 splits; N = 2 → relative ranks 1/3 or 2/3, logits ∓ln 2."""
    a = np.array([0.02, 0.01, -0.01, -0.02])
    b = -a
    reversal = pbo_cscv(np.column_stack([a, b]), n_partitions=2, metric="mean", return_logits=True)
    assert reversal["n_combinations"] == 2
    assert reversal["logits"] == pytest.approx([math.log(0.5), math.log(0.5)])
    assert reversal["pbo"] == 1.0
    steady = np.column_stack([np.full(4, 0.01), np.full(4, -0.01)])
    steady_result = pbo_cscv(steady, n_partitions=2, metric="mean", return_logits=True)
    assert steady_result["logits"] == pytest.approx([math.log(2.0), math.log(2.0)])
    assert steady_result["pbo"] == 0.0


def test_pbo_is_zero_when_one_configuration_dominates_everywhere():
    rng = np.random.default_rng(1)
    matrix = rng.normal(0, 0.01, (2000, 10))
    matrix[:, 3] += 0.004  # a real edge of 0.4 standard deviations per period
    result = pbo_cscv(matrix, n_partitions=16)
    assert result["n_combinations"] == math.comb(16, 8) == 12870
    assert result["pbo"] == 0.0
    assert result["prob_oos_loss"] == 0.0


def test_pbo_of_pure_noise_is_about_one_half():
    """No configuration has an edge: the in-sample winner's out-of-sample rank is uniform,
    so PBO → 0.5 (Bailey et al. 2017, the null case). One matrix is a noisy estimate;
    the mean over 40 independent matrices is tight."""
    values = []
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        values.append(pbo_cscv(rng.normal(0, 0.01, (400, 20)), n_partitions=8)["pbo"])
    assert np.mean(values) == pytest.approx(0.5, abs=0.07)


def test_pbo_is_one_when_every_in_sample_gain_is_an_out_of_sample_loss():
    """Each configuration's block means sum to zero, so on any half split the in-sample mean is
    minus the out-of-sample mean: the in-sample best is always the out-of-sample worst."""
    rng = np.random.default_rng(2)
    s, n_cfg, rows = 8, 6, 10
    block_means = rng.normal(0, 0.01, (s, n_cfg))
    block_means -= block_means.mean(axis=0)
    wiggle = np.tile([0.001, -0.001], rows // 2)[:, None]  # zero-sum noise inside each block
    matrix = np.vstack([block_means[b] + wiggle for b in range(s)])
    result = pbo_cscv(matrix, n_partitions=s, metric="mean")
    assert result["pbo"] == 1.0
    assert result["degradation_slope"] == pytest.approx(-1.0)


def test_block_statistics_shortcut_equals_brute_force_cscv():
    """pbo_cscv works from per-block sums; recompute it the literal way (concatenate the rows
    of each half, Sharpe with ddof=1, rank, logit) and compare every logit."""
    rng = np.random.default_rng(9)
    matrix = rng.normal(0.0002, 0.01, (123, 5)) + np.linspace(-0.002, 0.002, 5)
    s = 6
    fast = pbo_cscv(matrix, n_partitions=s, return_logits=True)
    blocks = np.array_split(np.arange(len(matrix)), s)
    logits = []
    for combo in itertools.combinations(range(s), s // 2):
        is_rows = np.concatenate([blocks[i] for i in combo])
        oos_rows = np.concatenate([blocks[i] for i in range(s) if i not in combo])
        sr_is = matrix[is_rows].mean(0) / matrix[is_rows].std(0, ddof=1)
        sr_oos = matrix[oos_rows].mean(0) / matrix[oos_rows].std(0, ddof=1)
        best = int(np.argmax(sr_is))
        rank = 1 + np.sum(sr_oos < sr_oos[best])
        omega = rank / (matrix.shape[1] + 1)
        logits.append(math.log(omega / (1 - omega)))
    assert fast["logits"] == pytest.approx(logits, rel=1e-9)
    assert fast["pbo"] == pytest.approx(np.mean(np.array(logits) <= 0))
    assert BlockStats.from_matrix(matrix, s).counts.tolist() == [len(b) for b in blocks]


@pytest.mark.parametrize("shape,partitions,message", [
    ((100, 1), 4, "at least 2 configurations"),
    ((100, 3), 5, "even integer"),
    ((100, 3), 22, "even integer"),
    ((10, 3), 8, "at least 2 rows per partition"),
])
def test_pbo_refuses_impossible_inputs(shape, partitions, message):
    with pytest.raises(ValueError, match=message):
        pbo_cscv(np.zeros(shape) + np.arange(shape[0])[:, None] * 1e-4, n_partitions=partitions)


def test_a_configuration_that_never_moved_in_a_half_has_no_sharpe_there():
    """A configuration with only zero returns in a half (it never traded there) ranks as
    undefined in that half: never the in-sample best, below everyone out of sample. Rebuilt
    from centred block sums its variance there is float noise, not zero, which used to give it
    a Sharpe of +1.7e-8 here, above every losing configuration."""
    rng = np.random.default_rng(3)
    n = 100
    idle_then_wins = np.r_[np.zeros(n), rng.normal(0.002, 0.01, n)]
    loses_twice = np.r_[rng.normal(-0.002, 0.01, n), rng.normal(-0.002, 0.01, n)]
    loses_then_gains = np.r_[rng.normal(-0.004, 0.01, n), rng.normal(0.001, 0.01, n)]
    matrix = np.array([idle_then_wins, loses_twice, loses_then_gains]).T
    result = pbo_cscv(matrix, n_partitions=2, return_logits=True)
    # First half in sample: the idle configuration is undefined, so the best is loses_twice
    # (Sharpe -0.04 vs -0.41), which is the worst of three out of sample: logit ln(1/3).
    # Second half in sample: loses_then_gains is best (0.25); out of sample it beats the idle
    # configuration (undefined, last) and trails loses_twice: rank 2 of 3, logit 0.
    assert result["logits"] == pytest.approx([math.log(1 / 3), 0.0])
    assert result["pbo"] == 1.0
