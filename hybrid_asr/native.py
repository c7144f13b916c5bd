"""Load order of the compiled Kaldi bindings that each bundle their own OpenFst.

kaldi-hmm-gmm 1.1.4 hangs for ever at import (its OpenFst's static registration waits on a
lock that never opens) when kaldifst, kaldi-decoder or kaldilm was imported earlier in the
process; imported first, it and the others load and work. ``import hybrid_asr`` therefore loads
kaldi-hmm-gmm before anything else of ours can load the others, and
:func:`kaldi_hmm_gmm_modules` refuses, with a clear error instead of a hang, where the order was
already wrong (a program that imported kaldifst before ``hybrid_asr``).

torchaudio (0.13) loaded before kaldi-hmm-gmm makes the same hang move: kaldi-hmm-gmm then
imports, but a later kaldilm or kaldifst import hangs (measured: ``import torchaudio,
_kaldi_hmm_gmm, kaldilm`` never returns; ``_kaldi_hmm_gmm, torchaudio, kaldilm`` does). Since
kaldilm and kaldifst serve every model and kaldi-hmm-gmm only the GMMs, a program that imported
torchaudio first does not get kaldi-hmm-gmm preloaded, and :func:`kaldi_hmm_gmm_modules` refuses.
"""

import sys
from types import ModuleType
from typing import Tuple

#: Bindings whose OpenFst makes a later first import of kaldi-hmm-gmm hang (measured, 1.1.4).
OPENFST_BINDINGS = ("kaldifst", "_kaldifst", "kaldi_decoder", "_kaldi_decoder", "kaldilm",
                    "_kaldilm")


#: Modules after which a first import of kaldi-hmm-gmm makes later kaldilm/kaldifst imports hang.
HANG_LATER = ("torchaudio",)


def _loaded_first() -> Tuple[str, ...]:
    return tuple(m for m in OPENFST_BINDINGS + HANG_LATER if m in sys.modules)


def preload_kaldi_hmm_gmm() -> None:
    """Import kaldi-hmm-gmm now if that is still safe; a missing package is left to its user."""
    if "_kaldi_hmm_gmm" in sys.modules or _loaded_first():
        return
    try:
        import _kaldi_hmm_gmm  # noqa: F401
    except ImportError:
        pass


def kaldi_hmm_gmm_modules() -> Tuple[ModuleType, ModuleType]:
    """kaldi-hmm-gmm's Python module and its raw binding (which alone has ``mle_diag_gmm_update``).

    Raises:
        ImportError: kaldifst, kaldi-decoder or kaldilm was imported before kaldi-hmm-gmm in
            this process (importing it now would hang), or kaldi-hmm-gmm is not installed.
    """
    if "_kaldi_hmm_gmm" not in sys.modules and _loaded_first():
        raise ImportError(
            f"kaldi-hmm-gmm must be imported before {', '.join(_loaded_first())} (it or a later "
            "kaldilm/kaldifst import hangs otherwise): import hybrid_asr first in this program")
    import _kaldi_hmm_gmm
    import kaldi_hmm_gmm
    return kaldi_hmm_gmm, _kaldi_hmm_gmm
