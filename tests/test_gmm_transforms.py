"""LDA, MLLT and the GMM model's feature transform (hybrid_asr.gmm.transforms, models.gmm)."""

import numpy as np
import pytest
import torch

from hybrid_asr.gmm import DiagGmmSet
from hybrid_asr.gmm.transforms import LdaStats, MlltStats, lda_objective
from hybrid_asr.models.base import pad_context
from hybrid_asr.models.gmm import GmmAcousticModel
from hybrid_asr.training.gmm import splice_frames


def brute_force_log_likelihoods(gmm: DiagGmmSet, x: np.ndarray) -> np.ndarray:
    out = np.empty((len(x), gmm.num_pdfs))
    for p in range(gmm.num_pdfs):
        n = gmm.num_gauss[p]
        w, m, v = gmm.weights[p, :n], gmm.means[p, :n], gmm.variances[p, :n]
        comp = np.log(w)[None] - 0.5 * (np.log(2 * np.pi * v)[None] + (x[:, None] - m[None]) ** 2 / v[None]).sum(2)
        out[:, p] = np.logaddexp.reduce(comp, axis=1)
    return out


def uneven_gmm(seed=0, D=4):
    """Pdfs of 1, 5 and 2 Gaussians (padded arrays), far apart."""
    rng = np.random.default_rng(seed)
    num = np.array([1, 5, 2])
    G = num.max()
    w = np.zeros((3, G))
    for p, n in enumerate(num):
        w[p, :n] = rng.dirichlet(np.ones(n))
    m = rng.normal(0, 1, (3, G, D)) + np.array([-30.0, 0.0, 30.0])[:, None, None]
    v = rng.uniform(0.3, 2, (3, G, D))
    return DiagGmmSet(num, w, m, v)


def test_log_likelihoods_with_uneven_mixtures_match_brute_force():
    gmm = uneven_gmm()
    x = np.random.default_rng(1).normal(0, 20, (200, 4))
    got = gmm.log_likelihoods(torch.from_numpy(x).float(), chunk_frames=64).double().numpy()
    want = brute_force_log_likelihoods(gmm, x)
    assert np.isfinite(got).all()  # hundreds of nats apart: each pdf has its own log-sum-exp
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-2)


def test_component_posteriors_match_brute_force():
    gmm = uneven_gmm(2)
    rng = np.random.default_rng(3)
    x = rng.normal(0, 20, (50, 4))
    pdfs = rng.integers(0, 3, 50)
    post = gmm.component_posteriors(torch.from_numpy(x), torch.from_numpy(pdfs), chunk_frames=7).numpy()
    for t in range(50):
        p = pdfs[t]
        n = gmm.num_gauss[p]
        comp = np.log(gmm.weights[p, :n]) - 0.5 * (np.log(2 * np.pi * gmm.variances[p, :n])
                                                    + (x[t] - gmm.means[p, :n]) ** 2 / gmm.variances[p, :n]).sum(1)
        want = np.exp(comp - np.logaddexp.reduce(comp))
        np.testing.assert_allclose(post[t, :n], want, atol=1e-9)
        assert (post[t, n:] == 0).all()


def lda_data(seed=0, per_class=400):
    """6-dimensional frames of 4 classes that differ only along two mixed directions, with a
    large within-class spread along the others."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0], [4, 0], [0, 4], [4, 4]], dtype=float)
    mix = np.linalg.qr(rng.normal(size=(6, 6)))[0]
    scale = np.array([1, 1, 8, 8, 8, 8], dtype=float)
    labels = np.repeat(np.arange(4), per_class)
    z = rng.normal(size=(len(labels), 6)) * scale
    z[:, :2] += centres[labels]
    return torch.from_numpy(z @ mix.T + 5.0), torch.from_numpy(labels)


def test_lda_maximizes_fishers_criterion_and_whitens_the_classes():
    x, labels = lda_data()
    stats = LdaStats.zeros(4, 6)
    half = len(x) // 2  # accumulating in two parts is the same as in one
    stats.accumulate(x[::2], labels[::2])
    stats.accumulate(x[1::2], labels[1::2])
    M = stats.estimate(2)
    assert M.shape == (2, 7)
    within, between, _ = stats.scatter()
    best = lda_objective(M, within, between)
    rng = np.random.default_rng(5)
    others = [lda_objective(rng.normal(size=(2, 6)), within, between) for _ in range(200)]
    pca = np.linalg.eigh(within + between)[1][:, -2:].T  # the directions of largest total variance
    assert best > max(others) and best > lda_objective(pca, within, between) + 1
    y = x.numpy() @ M[:, :6].T + M[:, 6]
    assert np.allclose(y.mean(0), 0, atol=1e-8)  # the offset column centres the projection
    within_y = sum(np.cov(y[labels.numpy() == c].T, bias=True) * (labels == c).sum().item() for c in range(4)) / len(y)
    np.testing.assert_allclose(within_y, np.eye(2), atol=1e-8)
    # frames of weight 0 are left out
    weighted = LdaStats.zeros(4, 6)
    weighted.accumulate(x, labels, (torch.arange(len(x)) < half).double())
    alone = LdaStats.zeros(4, 6)
    alone.accumulate(x[:half], labels[:half])
    np.testing.assert_allclose(weighted.second, alone.second)
    with pytest.raises(ValueError, match="dimension"):
        stats.estimate(7)


def test_mllt_raises_its_objective_on_every_row_and_the_diagonal_models_fit():
    """Classes with diagonal covariances in a rotated space: MLLT finds a transform under which
    diagonal Gaussians explain the data far better (log|det A| included)."""
    rng = np.random.default_rng(0)
    D, C, n = 5, 3, 3000
    rot = np.linalg.qr(rng.normal(size=(D, D)))[0]
    labels = rng.integers(0, C, n)
    z = rng.normal(size=(n, D)) * rng.uniform(0.3, 3, (C, D))[labels] + rng.normal(0, 3, (C, D))[labels]
    x = torch.from_numpy(z @ rot.T)
    pdfs = torch.from_numpy(labels)

    def diag_fit(feats):
        gmm = DiagGmmSet.single_gaussians(C, feats.float())
        gmm.ml_update(feats.float(), pdfs)
        average, _ = gmm.ml_update(feats.float(), pdfs)
        return gmm, average

    gmm, before = diag_fit(x)
    stats = MlltStats.zeros(D)
    stats.accumulate(gmm, x, pdfs)
    assert stats.beta == pytest.approx(n)
    values = [stats.objective(np.eye(D))]
    A = stats.estimate(num_iters=5, on_row=lambda a: values.append(stats.objective(a)))
    assert len(values) == 1 + 5 * D
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(values, values[1:]))
    assert values[-1] > values[0] + 0.1 * n
    _, after = diag_fit(x @ torch.from_numpy(A).T)
    gain = after + np.linalg.slogdet(A)[1] - before
    assert gain > 0.1  # nats per frame, Jacobian included
    # weight 0 removes frames from the statistics
    half = MlltStats.zeros(D)
    half.accumulate(gmm, x, pdfs, (torch.arange(n) % 2).double())
    assert half.beta == pytest.approx(n / 2, rel=1e-6)


def test_transform_means_maps_every_real_mean():
    gmm, old = uneven_gmm(4), uneven_gmm(4)
    A = np.random.default_rng(6).normal(size=(4, 5))
    gmm.transform_means(A)
    for p, n in enumerate(gmm.num_gauss):
        np.testing.assert_allclose(gmm.means[p, :n], old.means[p, :n] @ A[:, :4].T + A[:, 4])
    np.testing.assert_array_equal(gmm.variances, old.variances)
    with pytest.raises(ValueError):
        gmm.transform_means(np.eye(3))


def test_gmm_model_splices_and_transforms_inside_forward():
    rng = np.random.default_rng(7)
    F, c, D = 3, 2, 4
    gmm = uneven_gmm(8, D)
    transform = rng.normal(size=(D, (2 * c + 1) * F + 1))
    model = GmmAcousticModel.from_gmms(gmm, transform, c, F).eval()
    assert model.left_context == model.right_context == c
    x = torch.from_numpy(rng.normal(size=(20, F))).float()
    spliced = splice_frames(x, c)
    assert spliced.shape == (20, (2 * c + 1) * F)
    assert torch.equal(spliced[5, F * c:F * (c + 1)], x[5]) and torch.equal(spliced[0, :F], x[0])  # edge repeated
    want = gmm.log_likelihoods((spliced.double() @ torch.from_numpy(transform[:, :-1]).T
                                + torch.from_numpy(transform[:, -1])).float())
    out, lengths = model(pad_context(x, c, c)[None], torch.tensor([20 + 2 * c]))
    assert lengths.tolist() == [20] and out.shape == (1, 20, 3)
    torch.testing.assert_close(out[0], want, atol=1e-3, rtol=1e-5)
    model.means.add_(1.0)  # an in-place change of the parameters is seen by the next call
    moved, _ = model(pad_context(x, c, c)[None], torch.tensor([20 + 2 * c]))
    assert not torch.allclose(moved, out)
    torch.testing.assert_close(moved[0], model.gmms().log_likelihoods(model.gmm_features(pad_context(x, c, c)[None])[0]))
    with pytest.raises(ValueError, match="cannot read"):
        GmmAcousticModel.from_gmms(gmm, transform[:, :-2], c, F)


def test_with_transform_scores_as_a_full_copy_and_shares_the_gaussians():
    """A model with another transform (a speaker's composed fMLLR) scores exactly as a model built
    from copies of the mixtures with that transform, shares their buffers and scorer, and leaves
    the original model's transform alone; a model without a transform, or a wrong shape, is refused."""
    rng = np.random.default_rng(11)
    F, c, D = 3, 1, 4
    gmm = uneven_gmm(9, D)
    base = GmmAcousticModel.from_gmms(gmm, rng.normal(size=(D, (2 * c + 1) * F + 1)), c, F).eval()
    before = base.transform.clone()
    other = rng.normal(size=(D, (2 * c + 1) * F + 1))
    shared = base.with_transform(other)
    copied = GmmAcousticModel.from_gmms(gmm, other, c, F).eval()
    x = pad_context(torch.from_numpy(rng.normal(size=(15, F))).float(), c, c)[None]
    lengths = torch.tensor([15 + 2 * c])
    torch.testing.assert_close(shared(x, lengths)[0], copied(x, lengths)[0])
    assert not torch.allclose(shared(x, lengths)[0], base(x, lengths)[0])
    assert torch.equal(base.transform, before)
    assert shared.means.data_ptr() == base.means.data_ptr() and shared._scorer() is base._scorer()
    with pytest.raises(ValueError, match="shape"):
        base.with_transform(other[:, :-1])
    with pytest.raises(ValueError, match="without a feature transform"):
        GmmAcousticModel.from_gmms(gmm).with_transform(other)


def _one_gaussian_per_pdf_frames(rng, dim, num_pdfs=6, frames=20000):
    """A model of one Gaussian per pdf and ``frames`` frames drawn from it: ``(DiagGmmSet, pdf-id
    of every frame int64 [n], frames float64 [n, dim])``."""
    gmm = DiagGmmSet(np.ones(num_pdfs, dtype=np.int64), np.ones((num_pdfs, 1)), rng.normal(0, 4, (num_pdfs, 1, dim)),
                     rng.uniform(0.3, 1.5, (num_pdfs, 1, dim)))
    pdfs = rng.integers(0, num_pdfs, frames)
    return gmm, pdfs, gmm.means[pdfs, 0] + rng.normal(size=(frames, dim)) * np.sqrt(gmm.variances[pdfs, 0])


def test_fmllr_recovers_a_known_affine_distortion_and_raises_its_objective_every_row():
    """A speaker whose frames are ``M x + c`` of frames the model knows: fMLLR estimated on the
    aligned frames undoes the distortion, and its objective never falls."""
    from hybrid_asr.gmm.transforms import FmllrStats, apply_affine

    rng = np.random.default_rng(11)
    D = 4
    gmm, pdfs, clean = _one_gaussian_per_pdf_frames(rng, D)
    M = np.eye(D) + 0.3 * rng.normal(size=(D, D))
    c = rng.normal(0, 2, D)
    observed = torch.from_numpy(clean @ M.T + c)
    stats = FmllrStats.zeros(D)
    stats.accumulate(gmm, observed, torch.from_numpy(pdfs))
    values = [stats.objective(np.concatenate([np.eye(D), np.zeros((D, 1))], 1))]
    W = stats.estimate(num_iters=8, on_row=lambda w: values.append(stats.objective(w)))
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(values, values[1:]))
    true = np.concatenate([np.linalg.inv(M), -np.linalg.inv(M) @ c[:, None]], 1)
    np.testing.assert_allclose(W, true, atol=0.05)
    # the adapted frames score higher under the model than the distorted ones (Jacobian included)
    ll = lambda x: gmm.log_likelihoods(x).double().gather(1, torch.from_numpy(pdfs)[:, None]).mean().item()
    assert ll(apply_affine(W, observed)) + np.linalg.slogdet(W[:, :D])[1] > ll(observed.float()) + 0.5


def test_estimate_fmllr_keeps_the_identity_below_the_minimum_count():
    """Kaldi's --fmllr-min-count: fewer weighted frames than the minimum give the identity, gain 0;
    silence frames count at their weight."""
    from hybrid_asr.gmm.transforms import estimate_fmllr

    rng = np.random.default_rng(3)
    D, P = 3, 4
    gmm = DiagGmmSet(np.ones(P, dtype=np.int64), np.ones((P, 1)), rng.normal(0, 3, (P, 1, D)), np.ones((P, 1, D)))
    pdfs = rng.integers(0, P, 60)
    x = torch.from_numpy(gmm.means[pdfs, 0] * 1.3 + 0.5 + rng.normal(size=(60, D)))
    frames = [(x, pdfs, pdfs)]
    identity = np.concatenate([np.eye(D), np.zeros((D, 1))], 1)
    W, gain = estimate_fmllr(gmm, frames, np.array([0]), silence_weight=0.0, min_count=30)
    assert gain > 0 and not np.allclose(W, identity)
    speech = int((pdfs != 0).sum())
    W, gain = estimate_fmllr(gmm, frames, np.array([0]), silence_weight=0.0, min_count=speech + 1)
    assert gain == 0.0 and np.array_equal(W, identity)


@pytest.mark.parametrize("update", ["diag", "offset"])
def test_constrained_fmllr_recovers_its_distortion_and_never_lowers_the_objective(update):
    """Kaldi's --fmllr-update-type diag / offset: a per-dimension scale and shift (or the shift
    alone) of frames the model knows is undone, only the free entries move, and no row update
    lowers the objective."""
    from hybrid_asr.gmm.transforms import FmllrStats

    rng = np.random.default_rng(5)
    D = 4
    gmm, pdfs, clean = _one_gaussian_per_pdf_frames(rng, D)
    scale = rng.uniform(0.7, 1.4, D) if update == "diag" else np.ones(D)
    shift = rng.normal(0, 2, D)
    stats = FmllrStats.zeros(D)
    stats.accumulate(gmm, torch.from_numpy(clean * scale + shift), torch.from_numpy(pdfs))
    identity = np.concatenate([np.eye(D), np.zeros((D, 1))], 1)
    values = [stats.objective(identity)]
    W = stats.estimate(num_iters=6, on_row=lambda w: values.append(stats.objective(w)), update=update)
    assert all(b >= a - 1e-6 * abs(a) for a, b in zip(values, values[1:])) and values[-1] > values[0]
    off_diagonal = ~np.eye(D, dtype=bool)
    assert np.all(W[:, :D][off_diagonal] == 0)
    np.testing.assert_allclose(np.diag(W[:, :D]), 1 / scale, atol=0.03)
    np.testing.assert_allclose(W[:, D], -shift / scale, atol=0.1)
    with pytest.raises(ValueError, match="update"):
        stats.estimate(update="block")
