"Losses: hand-computed values and gradients (crome.losses)."
import math
import pytest
import torch
from crome.losses import (bt_loss, tie_loss, soft_bt_loss, crome_loss, odin_loss, pearson, mmd2, mmd_loss,
                          quantile_edges, bin_ids)

t = torch.tensor


def test_bt_values_and_gradient():
    rc, rr = t([0.0, 1.0, -2.0], requires_grad=True), t([0.0, 0.0, 0.0])
    loss = bt_loss(rc, rr, reduction='none')
    expected = [math.log(2), math.log1p(math.exp(-1)), math.log1p(math.exp(2))]
    assert torch.allclose(loss, t(expected), atol=1e-6)
    loss.sum().backward()
    assert torch.allclose(rc.grad, -torch.sigmoid(-t([0.0, 1.0, -2.0])), atol=1e-6)
    assert torch.allclose(bt_loss(t([1.0]), t([0.0]), margin=t([1.0])), t(math.log(2)))


def test_bt_symmetric_and_decreasing():
    x, y = torch.randn(10), torch.randn(10)
    assert torch.allclose(bt_loss(x, y, reduction='none'), bt_loss(-y, -x, reduction='none'))
    assert bt_loss(t([3.0]), t([0.0])) < bt_loss(t([1.0]), t([0.0])) < bt_loss(t([-1.0]), t([0.0]))


def test_tie_minimum_at_zero_with_zero_gradient():
    a = t([0.0], requires_grad=True)
    loss = tie_loss(a, t([0.0])); loss.backward()
    assert abs(loss.item() - math.log(2)) < 1e-7 and abs(a.grad.item()) < 1e-7
    # d tie/d delta = sigmoid(d) - 1/2
    a = t([1.5], requires_grad=True); tie_loss(a, t([0.0])).backward()
    assert abs(a.grad.item() - (torch.sigmoid(t(1.5)).item() - 0.5)) < 1e-6
    x, y = torch.randn(6), torch.randn(6)
    assert torch.allclose(tie_loss(x, y), tie_loss(y, x))
    assert torch.allclose(soft_bt_loss(x, y, torch.full((6,), 0.5)), tie_loss(x, y))
    assert torch.allclose(soft_bt_loss(x, y, torch.ones(6)), bt_loss(x, y))


def test_crome_loss_is_bt_plus_lambda_tie():
    rc, rr, lab = t([2.0, 0.5, -1.0, 0.0]), t([0.0, 0.5, 1.0, 3.0]), t([1.0, 0.5, 1.0, 0.5])
    for lam in (0.0, 1.0, 2.5):
        manual = (bt_loss(rc[[0, 2]], rr[[0, 2]], reduction='sum') + lam * tie_loss(rc[[1, 3]], rr[[1, 3]], reduction='sum')) / 4
        assert torch.allclose(crome_loss(rc, rr, lab, lambda_tie=lam), manual)
    # the tie term pulls a tied pair together (+lambda, not the paper's typo)
    a = t([2.0], requires_grad=True); crome_loss(a, t([0.0]), t([0.5])).backward()
    assert a.grad.item() > 0


def test_bad_inputs():
    with pytest.raises(ValueError): bt_loss(t([1.0, 2.0]), t([1.0]))
    with pytest.raises(ValueError): soft_bt_loss(t([1.0]), t([0.0]), t([1.5]))
    with pytest.raises(ValueError): bt_loss(t([1.0]), t([0.0]), reduction='max')


def test_odin_terms():
    s_c, s_r = t([10.0, 30.0]), t([20.0, 40.0])
    q_c, q_r = t([1.0, 0.0]), t([0.0, 1.0])  # uncorrelated with s
    loss, parts = odin_loss(q_c, q_r, s_c / 10, s_r / 10, s_c, s_r, t([1.0, 0.0]), t([0.0, 1.0]), return_parts=True)
    assert abs(parts['corr_len'] - 1) < 1e-5 and abs(parts['corr_quality']) < 1e-6 and parts['orth'] == 0
    assert torch.allclose(loss, bt_loss(q_c + s_c / 10, q_r + s_r / 10) - 1, atol=1e-5)
    # orthogonality term is |cos(w_q, w_l)| = 2 / (sqrt(2) * 2); orth_normalized=False: the raw |w_q . w_l| = 2
    rank = bt_loss(q_c + s_c / 10, q_r + s_r / 10)
    kw = dict(lambda_len=0, lambda_quality=0)
    l2 = odin_loss(q_c, q_r, s_c / 10, s_r / 10, s_c, s_r, t([1.0, 1.0]), t([2.0, 0.0]), **kw)
    assert torch.allclose(l2, rank + 2 ** -0.5)
    raw = odin_loss(q_c, q_r, s_c / 10, s_r / 10, s_c, s_r, t([1.0, 1.0]), t([2.0, 0.0]), orth_normalized=False, **kw)
    assert torch.allclose(raw, rank + 2)
    # the cosine ignores the heads' scale (as after reward_init_std); the raw product grows with it
    big = odin_loss(q_c, q_r, s_c / 10, s_r / 10, s_c, s_r, t([1e3, 1e3]), t([2e4, 0.0]), return_parts=True, **kw)[1]
    assert abs(big['orth'] - 2 ** -0.5) < 1e-6
    assert abs(pearson(t([1.0, 2.0, 3.0]), t([3.0, 2.0, 1.0])).item() + 1) < 1e-6


def test_mmd():
    r = torch.randn(12)
    assert mmd2(r, r.clone()).item() == 0
    assert 0 < mmd2(r, r + 0.5).item() < mmd2(r, r + 2).item()
    # identical distributions in every bin -> zero; separated -> positive, with gradient
    assert mmd_loss(t([1.0, 2.0, 1.0, 2.0, 1.0, 2.0]), t([0, 0, 1, 1, 2, 2])).item() < 1e-7
    rw = t([0.0, 0.0, 3.0, 3.0], requires_grad=True)
    m = mmd_loss(rw, t([0, 0, 1, 1])); m.backward()
    assert m.item() > 0.1 and rw.grad[0] < 0 < rw.grad[2]  # pushes the bins together
    assert mmd_loss(t([0.0, 5.0]), t([0, 0])).item() == 0
    # conditional: within strata only (bins differ only across strata here -> zero)
    assert mmd_loss(t([0.0, 0.0, 9.0, 9.0]), t([0, 1, 0, 1]), conditional_on=t([1, 1, 0, 0])).item() < 1e-7
    with pytest.raises(ValueError): mmd_loss(t([0.0]), t([0, 1]))


def test_bins():
    edges = quantile_edges(list(range(100)), 4)
    assert len(edges) == 3 and bin_ids([0, 30, 60, 99], edges).tolist() == [0, 1, 2, 3]
    assert quantile_edges([5.0] * 10, 10) == [5.0]  # duplicates collapse
    with pytest.raises(ValueError): quantile_edges([1.0], 1)


@pytest.mark.parametrize('labels, shown', [([1.0, 2.0, 2.0], '2 of 3 are not: 2.0'), ([0.0, 0.5, 1.0], '1 of 3 are not: 0.0'),
                                           ([1.0, float('nan'), 0.5], '1 of 3 are not: nan')])
def test_crome_loss_rejects_labels_other_than_1_and_half(labels, shown):
    "A label outside {1.0, 0.5} is named, never weighted as a tie (2.0) or passed on as NaN."
    with pytest.raises(ValueError, match='labels must be 1.0 \\(preference\\) or 0.5 \\(tie\\)') as e:
        crome_loss(t([2.0, 0.0, 1.0]), t([0.0, 0.0, 1.0]), t(labels))
    assert str(e.value).endswith(shown)
    with pytest.raises(ValueError, match='1 of 1 are not: 0.0'):  # through ODIN's ranking term too
        odin_loss(t([1.0]), t([0.0]), t([0.0]), t([0.0]), t([1.0]), t([2.0]), t([1.0, 0.0]), t([0.0, 1.0]), labels=t([0.0]))
