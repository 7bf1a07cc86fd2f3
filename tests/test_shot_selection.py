"""Choosing which K archs a new device measures (`choose_shots`): deterministic, K distinct items, decided by the
predictor alone (never the target's latencies), and on a synthetic two-head device it ranks better than random shots."""

import numpy as np
import pytest
from scipy.stats import spearmanr
from test_cross_device_adaptation import RecordingHeads, _write_table, setup  # noqa: F401  (setup is a fixture)

from trainer.evaluation import evaluate
from trainer.examples import load_examples
from trainer.predictors.heads import choose_shots, choose_strength, fit_mix
from trainer.tables import import_table

K = 10


MIX = [0.8, 0.2]


def _two_heads(n=2000, seed=1):
    """Two source heads that agree on most of the ranking (as real devices do) and a target 0.8 · h1 + 0.2 · h2
    measured with noise, all in log ratio to the reference."""
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 1.0, n)
    heads = np.column_stack([common + 0.3 * rng.normal(size=n), common + 0.3 * rng.normal(size=n)])
    return heads, heads @ MIX + 0.2 * rng.normal(size=n)


def _adapted(heads, target, shots):
    """(ρ on the items not measured, |mix - truth|₁) after fitting the mix to the shots and the reference."""
    points = np.append(shots, len(heads))  # the reference: every head and the target at log ratio 0
    design, log_y = np.vstack([heads, np.zeros(2)]), np.append(target, 0.0)
    mix = fit_mix(design[points], log_y[points], choose_strength(design[points], log_y[points]))
    scored = np.setdiff1d(np.arange(len(heads)), shots)
    return spearmanr(heads[scored] @ mix, target[scored])[0], float(np.abs(mix - MIX).sum())


def test_choice_is_deterministic_distinct_and_bounded():
    heads, _ = _two_heads()
    first = choose_shots(heads, K, known=np.zeros(2))
    assert first.tolist() == choose_shots(heads.copy(), K, known=np.zeros(2)).tolist()
    assert len(set(first.tolist())) == K and 0 <= first.min() and first.max() < len(heads)
    assert len(choose_shots(heads[:K], K)) == K
    with pytest.raises(ValueError):
        choose_shots(heads[:K], K + 1)


def test_chosen_shots_rank_better_than_random_ones_on_average():
    heads, target = _two_heads()
    rho, error = _adapted(heads, target, choose_shots(heads, K, known=np.zeros(2)))
    random = np.array([_adapted(heads, target, np.random.default_rng(s).permutation(len(heads))[:K])
                       for s in range(30)])
    assert rho > random[:, 0].mean()
    assert error < 0.5 * random[:, 1].mean()


def test_evaluate_chooses_the_same_shots_whatever_the_target_measured(setup):  # noqa: F811
    tmp_path, archs, dataset, truth = setup
    config = {"training": {"devices": ["a", "b"], "item_ids": []}}
    first = evaluate(RecordingHeads(truth), config, dataset, "t", shots=K, shot_selection="chosen")
    _write_table(tmp_path / "other.csv", archs, {a: 5.0 + (i * 7919 % 97) for i, a in enumerate(archs)})
    import_table(tmp_path / "other.csv", "nb201", "arch_str", "t_ms", "t3", dataset)
    second = evaluate(RecordingHeads(truth), config, dataset, "t3", shots=K, shot_selection="chosen")
    assert second.ids == first.ids  # the same K (and the reference) left out of scoring
    pool = {e.item_id for e in load_examples(dataset, ["t"]) if not e.is_reference}
    assert len(pool - set(first.ids)) == K
    drawn = evaluate(RecordingHeads(truth), config, dataset, "t", shots=K, shot_selection="random", seed=1)
    assert drawn.ids != first.ids


def _summed_variance(design, rows):
    """Σ over every candidate of x·M⁻¹·x, M = I + Σ over the measured rows of x xᵀ: what V-optimal shots minimise."""
    inverse = np.linalg.inv(np.eye(design.shape[1]) + design[rows].T @ design[rows])
    return float(np.einsum("ij,jk,ik->", design, inverse, design))


def test_variance_criterion_pins_down_the_predictions_better_than_random_or_determinant_shots():
    heads, _ = _two_heads(n=500)
    design = np.exp(np.column_stack([heads, heads[:, :1] * 0.5]))  # ratios of three heads, a linear mix's rows
    chosen = choose_shots(design, K, criterion="variance")
    assert len(set(chosen.tolist())) == K
    assert chosen.tolist() == choose_shots(design.copy(), K, criterion="variance").tolist()
    random = [_summed_variance(design, np.random.default_rng(s).permutation(len(design))[:K]) for s in range(30)]
    assert _summed_variance(design, chosen) < min(random)
    assert _summed_variance(design, chosen) <= _summed_variance(design, choose_shots(design, K))
