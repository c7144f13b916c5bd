"""GMM acoustic models (hybrid_asr.gmm): EM on synthetic classes, log-likelihoods, files."""

import numpy as np
import pytest
import torch

from hybrid_asr.errors import InputError
from hybrid_asr.gmm import DiagGmmSet, GmmConfig


def two_blob_classes(seed=0, frames=3000, dim=5):
    """Three classes; class 1 and 2 are each two blobs (so one Gaussian cannot fit them)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, frames)
    centres = {0: [np.zeros(dim)], 1: [np.full(dim, 6.0), np.full(dim, 12.0)], 2: [np.full(dim, -6.0), np.r_[-6.0, np.full(dim - 1, 6.0)]]}
    x = np.stack([centres[c][rng.integers(len(centres[c]))] + rng.standard_normal(dim) for c in labels])
    return torch.from_numpy(x).float(), torch.from_numpy(labels)


def test_viterbi_em_with_mixup_raises_likelihood_and_separates_classes():
    feats, labels = two_blob_classes()
    gmm = DiagGmmSet.single_gaussians(3, feats)
    rng = np.random.default_rng(1)
    averages = []
    for it in range(15):
        average, occupancy = gmm.ml_update(feats, labels)
        averages.append(average)
        if it == 1:
            gmm.mix_up(6, occupancy, rng)
    average, _ = gmm.ml_update(feats, labels)
    averages.append(average)
    assert all(b >= a - 1e-3 for a, b in zip(averages, averages[1:])), averages
    assert averages[-1] > averages[2] + 2  # mix-up pays on the two-blob classes (about 4 nats)
    assert gmm.num_gauss.sum() > 3
    ll = gmm.log_likelihoods(feats)
    assert ll.shape == (len(feats), 3) and ll.dtype == torch.float32
    assert torch.equal(ll.argmax(1), labels)
    # the mean log-likelihood of the aligned pdf is what the EM step reported
    assert ll.gather(1, labels[:, None]).mean().item() == pytest.approx(averages[-1], abs=1e-3)


def test_log_likelihoods_match_brute_force_densities():
    rng = np.random.default_rng(3)
    P, G, D = 4, 3, 6
    w = rng.dirichlet(np.ones(G), P)
    m = rng.normal(0, 3, (P, G, D)) + 40.0  # a large offset, as un-normalized c0
    v = rng.uniform(0.2, 3, (P, G, D))
    gmm = DiagGmmSet(np.full(P, G), w, m, v)
    x = rng.normal(40, 3, (50, D))
    comp = (np.log(w)[None] - 0.5 * (np.log(2 * np.pi * v)[None] + (x[:, None, None] - m[None]) ** 2 / v[None]).sum(3))
    want = np.log(np.exp(comp).sum(2))
    got = gmm.log_likelihoods(torch.from_numpy(x).float()).double().numpy()
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_mix_up_is_seeded_and_save_load_round_trips(tmp_path):
    feats, labels = two_blob_classes(seed=2)
    runs = []
    for _ in range(2):
        gmm = DiagGmmSet.single_gaussians(3, feats)
        _, occupancy = gmm.ml_update(feats, labels)
        gmm.mix_up(7, occupancy, np.random.default_rng(5))
        gmm.ml_update(feats, labels)
        runs.append(gmm)
    np.testing.assert_array_equal(runs[0].means, runs[1].means)
    runs[0].save(tmp_path / "gmm.npz")
    back = DiagGmmSet.load(tmp_path / "gmm.npz")
    torch.testing.assert_close(back.log_likelihoods(feats), runs[0].log_likelihoods(feats))


def test_load_rejects_bad_files_with_one_line(tmp_path):
    f = tmp_path / "gmm.npz"
    np.savez(f, num_gauss=np.array([1]), weights=np.array([[1.0]]), means=np.array([[[np.nan]]]),
             variances=np.array([[[1.0]]]))
    with pytest.raises(InputError, match="NaN or Inf"):
        DiagGmmSet.load(f)
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(InputError, match="not a GMM file"):
        DiagGmmSet.load(tmp_path / "junk.npz")


def test_config_bounds():
    with pytest.raises(ValueError):
        GmmConfig(min_variance=0)


_IMPORT_ORDER_SCRIPT = """
import sys
{first}
import torch
from hybrid_asr.gmm import DiagGmmSet
x = torch.randn(50, 3)
gmm = DiagGmmSet.single_gaussians(2, x)
try:
    gmm.ml_update(x, torch.zeros(50, dtype=torch.long))
except ImportError as e:
    print("ImportError:", e)
    sys.exit(3)
print("updated")
"""


@pytest.mark.parametrize("first, rc", [("import hybrid_asr, torchaudio, kaldifst, kaldilm, kaldi_decoder", 0),
                                       ("import kaldifst", 3),
                                       ("import torchaudio, hybrid_asr.lang", 3)])
def test_kaldi_hmm_gmm_import_order_never_hangs(first, rc):
    # kaldi-hmm-gmm 1.1.4 hangs at import after kaldifst/kaldilm/kaldi-decoder: importing
    # hybrid_asr loads it first; the wrong order is a clear ImportError, not a hang. After torchaudio it
    # would make the later kaldilm import hang: hybrid_asr then skips it and GMM training refuses.
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", _IMPORT_ORDER_SCRIPT.format(first=first)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == rc, out.stdout + out.stderr
    if rc:
        line = out.stdout.strip().splitlines()[-1]
        assert line.startswith("ImportError: kaldi-hmm-gmm must be imported before ")
        assert ("kaldifst" if "kaldifst" in first else "torchaudio") in line
    else:
        assert "updated" in out.stdout


def test_gmm_acoustic_model_scores_as_its_gmms_and_survives_the_bundle(tmp_path):
    from hybrid_asr.bundle import ModelBundle
    from hybrid_asr.features import FeatureConfig
    from hybrid_asr.features.cmvn import CmvnStats
    from hybrid_asr.hmm import HmmTopology
    from hybrid_asr.likelihoods import log_likelihoods
    from hybrid_asr.models import GmmAcousticModel

    x, labels = two_blob_classes(frames=2000, dim=39)
    gmms = DiagGmmSet.single_gaussians(3, x)
    for it in range(4):
        _, occ = gmms.ml_update(x, labels)
        gmms.mix_up(3 + 2 * it, occ, np.random.default_rng(it))
    # pdf 0 keeps one Gaussian: the others' padding must not be stored
    gmms.num_gauss[0], gmms.weights[0], gmms.means[0, 1:], gmms.variances[0, 1:] = 1, [1.0, 0.0, 0.0], 0.0, 1.0
    model = GmmAcousticModel.from_gmms(gmms)
    want = gmms.log_likelihoods(x[:50])
    out, lengths = model(x[:50].view(2, 25, 39), torch.tensor([25, 25]))
    assert torch.allclose(out.reshape(50, 3), want) and lengths.tolist() == [25, 25]
    topo = HmmTopology(["SIL"], [1], [3])
    bundle = ModelBundle(model, FeatureConfig(kind="mfcc", deltas=True), CmvnStats.from_features(x), torch.zeros(3), topo)
    bundle.save(tmp_path / "m")
    loaded = ModelBundle.load(tmp_path / "m")
    assert loaded.model.config.type == "gmm" and not list(loaded.model.parameters())
    # model.pt holds the Gaussians packed, without padding
    saved = torch.load(tmp_path / "m" / "model.pt")
    n = int(gmms.num_gauss.sum())
    assert n < gmms.weights.size and saved["means"].shape == (n, 39) and saved["weights"].shape == (n,)
    assert torch.equal(loaded.model.means, model.means) and torch.equal(loaded.model.variances, model.variances)
    # a padded state dict (written before packing) still loads
    padded = {k: v for k, v in model.state_dict().items()}
    padded.update(weights=model.weights.clone(), means=model.means.clone(), variances=model.variances.clone())
    old = GmmAcousticModel(model.config)
    old.load_state_dict(padded)
    assert torch.equal(old.means, model.means) and torch.equal(old.weights, model.weights)
    # the shared scoring path: zero priors, so the scores are the mixtures' log-likelihoods
    assert torch.allclose(log_likelihoods(loaded.model, x[:50], loaded.log_priors), want)


def test_gaussian_schedule_is_kaldis_and_realign_iters_are_checked():
    from hybrid_asr.errors import ConfigError
    from hybrid_asr.training.gmm import GmmTrainConfig, gaussian_schedule

    # train_mono.sh: numgauss = pdfs for iterations 0 and 1, then += (1000 - 105) // 30 = 29 up to iteration 31
    sched = gaussian_schedule(105, GmmTrainConfig())
    assert sched[:3] == [105, 105, 134] and sched[31] == 105 + 29 * 30 == sched[39] and len(sched) == 40
    assert GmmTrainConfig(realign_iters="1, 3,5,60").realign_set() == {1, 3, 5, 60}  # past num_iters: never reached
    for bad in ("0,1", "1,x"):
        with pytest.raises(ConfigError):
            GmmTrainConfig(realign_iters=bad)
