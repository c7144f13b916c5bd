"""Plot of one utterance's filterbank spectrogram with its aligned phone and senone boundaries."""

from pathlib import Path
from typing import Union

from hybrid_asr.hmm.alignment import load_alignment_dir, segments_from_marks, senone_segments
from hybrid_asr.errors import InputError
from hybrid_asr.features.storage import FeatureStore
from hybrid_asr.utils import atomic_path


def plot_alignment(ali_dir: Union[str, Path], feats_dir: Union[str, Path], utt_id: str,
                   out_png: Union[str, Path]) -> None:
    """Draw the raw features of ``utt_id`` (frames x bins) with its alignment: solid lines and
    labels at phone boundaries, short ticks at senone (pdf-id) changes inside phones. Works for
    monophone and senone alignment directories.

    Raises:
        InputError: the utterance is not in the alignments or the feature store.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    alis, marks, topo = load_alignment_dir(ali_dir)
    store = FeatureStore(feats_dir)
    if utt_id not in alis or utt_id not in store:
        raise InputError(ali_dir, f"utterance {utt_id} is not in both the alignments and {feats_dir}")
    feats = store.raw(utt_id).numpy()
    segs = segments_from_marks(marks[utt_id], topo.phone_names)
    shift = store.config.frame_shift_ms / 1000
    fig, ax = plt.subplots(figsize=(max(6, feats.shape[0] * shift * 3), 3.5))
    ax.imshow(feats.T, origin="lower", aspect="auto", cmap="magma",
              extent=(0, feats.shape[0] * shift, 0, feats.shape[1]))
    for _, start, _ in senone_segments(alis[utt_id], marks[utt_id]):
        ax.axvline(start * shift, ymin=0.9, color="white", lw=0.6)
    for phone, start, end in segs:
        ax.axvline(start * shift, color="cyan", lw=0.8)
        ax.text((start + end) / 2 * shift, feats.shape[1] * 1.02, phone, ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"{store.config.kind} bin")
    ax.set_title(f"{utt_id}: {store.utterance(utt_id).text}", pad=16)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
