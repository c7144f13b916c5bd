"""Stage: build a model directory's decoding graph (``hybrid-asr make-graph``).

The lang-dependent part of every graph, ``det(L_disambig o G)``, is kept in the lang dir
(``cache/LG.fst`` or ``cache/LG_nomin.fst``, OpenFst binary, with ``.json`` naming the SHA-256 of
the ``L_disambig.pt`` and ``G.pt`` it was made from, written last), as Kaldi's mkgraph.sh keeps
``lang/tmp/LG.fst``: the models of a recipe (monophone, triphones, neural models) build it once.
A cache made from other files is rebuilt; a lang dir that cannot be written to is used without one.
"""

import json
import logging
import resource
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional, Union

from hybrid_asr.bundle import (GRAPH_DEFAULTS, ModelBundle, SearchConfig, file_sha256, graph_defaults,
                              load_search_config, save_graph)
from hybrid_asr.errors import InputError
from hybrid_asr.graph import GraphConfig, make_decoding_graph, make_lg_openfst
from hybrid_asr.lang import Lang
from hybrid_asr.utils import atomic_path, write_text_atomic

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (``getrusage``; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cached_lg_openfst(lang: Lang, minimize: bool = True):
    """``det(L_disambig o G)`` of ``lang`` (:func:`~hybrid_asr.graph.make_lg_openfst`), read from
    the lang dir's cache when it was made from the same ``L_disambig.pt`` and ``G.pt``, else built
    and cached (see the module docstring).

    Returns:
        ``kaldifst.StdVectorFst``.
    """
    import kaldifst

    fst_path = lang.path / "cache" / ("LG.fst" if minimize else "LG_nomin.fst")
    key_path = fst_path.with_suffix(".json")
    key = {name: file_sha256(lang.path / name) for name in ("L_disambig.pt", "G.pt")}
    try:
        if json.loads(key_path.read_text()) == key and fst_path.is_file():
            log.info("LG from %s", fst_path)
            return kaldifst.StdVectorFst.read(str(fst_path))
    except (OSError, ValueError, RuntimeError):
        pass  # no cache, or a damaged one: build it
    lg = make_lg_openfst(lang, minimize)
    try:
        fst_path.parent.mkdir(exist_ok=True)
        key_path.unlink(missing_ok=True)
        with atomic_path(fst_path) as tmp:
            lg.write(str(tmp))
        write_text_atomic(key_path, json.dumps(key, indent=1) + "\n")
    except OSError as e:
        log.warning("%s: LG not cached (%s)", lang.path, e)
    return lg


def model_graph_config(model_dir: Union[str, Path], **overrides) -> GraphConfig:
    """:class:`GraphConfig` with the model directory's own defaults
    (:func:`~hybrid_asr.bundle.graph_defaults`, e.g. a chain model's self-loop scale 1.0) and
    then ``overrides`` (command-line options) over its defaults.

    Raises:
        InputError: the model's defaults are not valid GraphConfig fields (names the file).
    """
    own = graph_defaults(model_dir)
    try:
        for name, value in own.items():  # JSON gives any type: each must be its field's
            if name not in GraphConfig.__dataclass_fields__:
                raise TypeError(f"unknown setting {name!r}")
            default = getattr(GraphConfig, name)
            ok = isinstance(value, bool) if isinstance(default, bool) else \
                (isinstance(value, (int, float)) and not isinstance(value, bool)) if isinstance(default, (int, float)) \
                else isinstance(value, type(default))
            if not ok:
                raise TypeError(f"{name} must be a {type(default).__name__}, got {value!r}")
        return GraphConfig(**{**own, **overrides})
    except (AttributeError, TypeError, ValueError) as e:
        raise InputError(Path(model_dir) / GRAPH_DEFAULTS, f"not valid graph settings: {e}") from None


def make_graph(model_dir: Union[str, Path], lang_dir: Union[str, Path], config: Optional[GraphConfig] = None,
               acoustic_scale: Optional[float] = None) -> dict:
    """Build HLG (monophone model) or HCLG (model with a tree) for ``model_dir`` from the L and G
    of ``lang_dir`` and save it there with the symbol tables and the default search settings.

    Args:
        model_dir: a model directory (:class:`~hybrid_asr.bundle.ModelBundle`).
        lang_dir: lang directory (``prepare-lang``) over the phones of the model's topology.
        config: construction and self-loop scale (None: :class:`GraphConfig`'s defaults with the
            model directory's own, :func:`~hybrid_asr.bundle.graph_defaults`, over them).
        acoustic_scale: default acoustic scale stored with the graph (None: the one the directory
            already stores, else SearchConfig's).

    Returns:
        the ``graph_info.json`` content: config, lang dir, states, arcs, build seconds, peak RSS (MB).

    Raises:
        InputError: the model or lang directory is incomplete, or their phone sets differ.
    """
    lang = Lang(lang_dir)
    bundle = ModelBundle.load(model_dir)
    bundle.check_lang(model_dir, lang_dir, lang.phone_pairs)
    if config is None:
        config = model_graph_config(model_dir)
    start = time.time()
    graph = make_decoding_graph(lang, bundle.topology, bundle.tree, config, cached_lg_openfst(lang, config.minimize))
    info = {**asdict(config), "phone_set": lang.phone_set_fingerprint(), "build_seconds": round(time.time() - start, 3),
            "peak_rss_mb": round(peak_rss_mb(), 1)}
    # the search settings stay those of the directory (e.g. a dev-chosen acoustic scale) when the
    # graph is rebuilt, e.g. with another LM
    search = load_search_config(model_dir) if (Path(model_dir) / "search_config.json").is_file() else SearchConfig()
    if acoustic_scale is not None:
        search = replace(search, acoustic_scale=acoustic_scale)
    save_graph(model_dir, graph, lang.path, search, info, name=bundle.graph_file)
    log.info("%s/%s: %d states, %d arcs, %.1f s", model_dir, bundle.graph_file, graph.shape[0], graph.num_arcs,
             info["build_seconds"])
    return {**info, "states": int(graph.shape[0]), "arcs": int(graph.num_arcs)}
