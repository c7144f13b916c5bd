"""hybrid-asr: a hybrid DNN-HMM speech recognizer built on PyTorch, torchaudio, lhotse and k2.

The package reads as the pipeline, one concept per subpackage::

    data -> features -> lang, hmm -> graph -> models -> bundle -> likelihoods -> align -> training
    -> decoding -> scoring; stages (what each command runs) -> cli

See ``docs/architecture.md`` for the data shapes that flow between the stages. Importing the
package changes nothing in the process environment; the ``hybrid-asr`` command sets
``MKL_DEBUG_CPU_TYPE=5`` (see :mod:`hybrid_asr.cli.main`). It does load kaldi-hmm-gmm, which
must come before kaldifst, kaldi-decoder and kaldilm (:mod:`hybrid_asr.native`).
"""

from hybrid_asr.native import preload_kaldi_hmm_gmm

preload_kaldi_hmm_gmm()

__version__ = "0.1.0"
