"""Stage: build a model directory's decoding graph (``hybrid-asr make-graph``)."""

import logging
import resource
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Optional, Union

from hybrid_asr.bundle import ModelBundle, SearchConfig, load_search_config, save_graph
from hybrid_asr.graph import GraphConfig, make_decoding_graph
from hybrid_asr.lang import Lang

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (``getrusage``; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_graph(model_dir: Union[str, Path], lang_dir: Union[str, Path], config: GraphConfig = GraphConfig(),
               acoustic_scale: Optional[float] = None) -> dict:
    """Build HLG (monophone model) or HCLG (model with a tree) for ``model_dir`` from the L and G
    of ``lang_dir`` and save it there with the symbol tables and the default search settings.

    Args:
        model_dir: a model directory (:class:`~hybrid_asr.bundle.ModelBundle`).
        lang_dir: lang directory (``prepare-lang``) over the phones of the model's topology.
        config: construction and self-loop scale.
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
    start = time.time()
    graph = make_decoding_graph(lang, bundle.topology, bundle.tree, config)
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
