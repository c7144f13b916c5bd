"""Acoustic models behind one interface (:class:`AcousticModel`): features with context frames ->
senone log-posteriors. The architecture is named by the ``type`` of its saved config.

=============  ===================================  ===============================================
type           class                                reference
=============  ===================================  ===============================================
``dnn``        :class:`DnnAcousticModel`            Hinton et al. 2012 (spliced frames)
``tdnn``       :class:`TdnnAcousticModel`           Peddinti et al. 2015; TDNN-F Povey et al. 2018
``lstm``       :class:`LstmAcousticModel`           Sak et al. 2014 (LSTMP; BLSTMP bidirectional)
``cldnn``      :class:`CldnnAcousticModel`          Sainath et al. 2015
``tdnn_lstm``  :class:`TdnnLstmAcousticModel`       Peddinti et al. 2018 (Kaldi tdnn_lstm_1c)
``gmm``        :class:`GmmAcousticModel`            a GMM-HMM's mixtures (trained by Viterbi EM)
=============  ===================================  ===============================================

The neural architectures (:data:`NEURAL_MODEL_TYPES`) are what ``train`` trains; a ``gmm`` is made
by ``train-gmm`` and outputs log-likelihoods, with zero priors in its bundle.
"""

import json
from pathlib import Path
from typing import Dict, Tuple, Type, Union

from hybrid_asr.errors import InputError
from hybrid_asr.models.base import AcousticModel, ModelConfig, pad_context
from hybrid_asr.models.cldnn import CldnnAcousticModel, CldnnConfig
from hybrid_asr.models.dnn import DnnAcousticModel, DnnConfig
from hybrid_asr.models.gmm import GmmAcousticModel, GmmModelConfig
from hybrid_asr.models.lstm import LstmAcousticModel, LstmConfig
from hybrid_asr.models.tdnn import TdnnAcousticModel, TdnnConfig
from hybrid_asr.models.tdnn_lstm import TdnnLstmAcousticModel, TdnnLstmConfig

#: ``type`` -> (config class, model class) of the architectures trained by gradient descent.
NEURAL_MODEL_TYPES: Dict[str, Tuple[Type[ModelConfig], Type[AcousticModel]]] = {
    "dnn": (DnnConfig, DnnAcousticModel),
    "tdnn": (TdnnConfig, TdnnAcousticModel),
    "lstm": (LstmConfig, LstmAcousticModel),
    "cldnn": (CldnnConfig, CldnnAcousticModel),
    "tdnn_lstm": (TdnnLstmConfig, TdnnLstmAcousticModel),
}
#: ``type`` -> (config class, model class) of every model a bundle may hold.
MODEL_TYPES: Dict[str, Tuple[Type[ModelConfig], Type[AcousticModel]]] = {
    **NEURAL_MODEL_TYPES, "gmm": (GmmModelConfig, GmmAcousticModel)}


def config_class(model_type: str) -> Type[ModelConfig]:
    """The config class of an architecture; ``KeyError`` with the known types if unknown."""
    if model_type not in MODEL_TYPES:
        raise KeyError(f"unknown model type {model_type!r} (known: {', '.join(MODEL_TYPES)})")
    return MODEL_TYPES[model_type][0]


def create_model(config: ModelConfig) -> AcousticModel:
    """A freshly initialized model of the architecture ``config`` describes."""
    return MODEL_TYPES[config.type][1](config)


def load_model_config(path: Union[str, Path]) -> ModelConfig:
    """Read ``model_config.json``: its ``type`` picks the class (no ``type``: a DNN, as written
    before there were other architectures).

    Raises:
        InputError: unreadable, unknown type, or invalid fields (names the file).
    """
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise InputError(path, f"not a valid model config: {e}") from None
    if not isinstance(d, dict):
        raise InputError(path, "not a valid model config: not a JSON object")
    kind = d.get("type", "dnn")
    try:
        cls = config_class(kind)
    except KeyError as e:
        raise InputError(path, e.args[0]) from None
    return cls.from_dict(d, path)


__all__ = ["MODEL_TYPES", "NEURAL_MODEL_TYPES", "AcousticModel", "CldnnAcousticModel", "CldnnConfig",
           "DnnAcousticModel", "DnnConfig", "GmmAcousticModel", "GmmModelConfig", "LstmAcousticModel", "LstmConfig", "ModelConfig", "TdnnAcousticModel", "TdnnConfig", "TdnnLstmAcousticModel", "TdnnLstmConfig",
           "config_class",
           "create_model", "load_model_config", "pad_context"]
