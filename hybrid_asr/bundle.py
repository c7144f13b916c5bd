"""The self-contained model directory: everything ``hybrid-asr decode`` needs, nothing else.

Layout::

    model.pt              acoustic model state_dict
    model_config.json     the architecture's config; its "type" (dnn, tdnn, lstm, cldnn, tdnn_lstm, gmm) picks the class
    feature_config.json   FeatureConfig (front end)
    cmvn.json             global CMVN statistics of the training data (for new audio)
    priors.pt             float32 [S] log senone priors
    topology.json         HmmTopology (phones, states, pdf-ids, self-loop probabilities)
    tree.json             DecisionTree, for context-dependent models only (then pdf-ids are senones)
    train_config.json     TrainConfig used (informational)
    bundle.json           manifest, written last (its presence marks a complete model directory):
                          kind of model, number of pdfs, feature config, the fingerprint of the phone
                          set (phones and ids) and the SHA-256 of every file above; every command
                          that combines this model with other parts checks them against it
    HLG.pt or HCLG.pt     decoding graph (added by ``make-graph``, like the next three): HLG for a
                          monophone model, HCLG for a model with a tree
    words.txt, phones.txt symbol tables of the lang dir the graph was built from
    lang/                 that lang dir without G (lexicon, L): for word times and alignment
    search_config.json    default acoustic scale and beams (added by ``make-graph``; a chain model's
                          training writes it first, with acoustic scale 1.0)
    graph_defaults.json   a model's own defaults for ``make-graph`` (GraphConfig fields; a chain
                          model's: self-loop scale 1.0), optional
    graph_info.json       how the graph was built (GraphConfig, lang dir), its size and build time
"""

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import torch

from hybrid_asr.bounds import bounded, check_bounds
from hybrid_asr.errors import ConfigError, InputError, TrainingDivergedError
from hybrid_asr.features.cmvn import CmvnStats
from hybrid_asr.features.config import FeatureConfig
from hybrid_asr.hmm.topology import HmmTopology
from hybrid_asr.hmm.tree import DecisionTree
from hybrid_asr.models import AcousticModel, create_model, load_model_config
from hybrid_asr.utils import atomic_path, describe_nonfinite, nonfinite_tensors, state_tensors, write_text_atomic

if TYPE_CHECKING:  # k2 and the graph code are imported where graphs are made: training and
    # feature extraction run without k2 (e.g. on a GPU machine whose torch has no k2 build)
    import k2

    from hybrid_asr.graph.h import HmmGraph

MODEL_FILES = ("model.pt", "model_config.json", "feature_config.json", "cmvn.json", "priors.pt", "topology.json")
MANIFEST = "bundle.json"
"""The model directory's manifest, written last by :meth:`ModelBundle.save`."""
MANIFEST_VERSION = 1
GRAPH_FILES = ("words.txt", "search_config.json", "graph_info.json")
DECODING_GRAPHS = ("HCLG.pt", "HLG.pt")
"""File names of the decoding graph: HCLG (context-dependent H) or HLG (monophone H)."""
GRAPH_DEFAULTS = "graph_defaults.json"
"""Optional file of a model directory: its own defaults for the graph's construction, a JSON
object of :class:`~hybrid_asr.graph.GraphConfig` fields (a chain model's ``self_loop_scale``)."""


def graph_defaults(model_dir: Union[str, Path]) -> dict:
    """The model directory's own :class:`~hybrid_asr.graph.GraphConfig` defaults
    (:data:`GRAPH_DEFAULTS`; empty when it has none).

    Raises:
        InputError: the file is not a JSON object.
    """
    f = Path(model_dir) / GRAPH_DEFAULTS
    if not f.is_file():
        return {}
    try:
        d = json.loads(f.read_text())
    except ValueError as e:
        raise InputError(f, f"not JSON: {e}") from None
    if not isinstance(d, dict):
        raise InputError(f, "not a JSON object of graph settings")
    return d


@dataclass(frozen=True)
class SearchConfig:
    """Decoder settings stored with the graph of a model directory (``search_config.json``).

    Attributes:
        acoustic_scale: multiplies the log-likelihoods before adding graph (LM + transition) scores.
        lm_scale: multiplies the graph scores (LM, pronunciation and transition scores: the graph
            holds them as one weight). Searching ``acoustic_scale * loglik + lm_scale * graph``
            within beam B is the same search as ``(acoustic_scale / lm_scale) * loglik + graph``
            within ``B / lm_scale``, which is what both backends run (:meth:`normalized`); lattice
            scores are in those units. Only the ratio of the two scales changes the best path.
        search_beam: search beam (log base e). 16 gave the words of 20 on AN4 dev with both
            backends at half the search time (benchmarks/README.md).
        output_beam: lattice beam.
        min_active_states: lower bound on active states per frame.
        max_active_states: upper bound on active states per frame (bounds memory).
        backend: ``"kaldi"`` (default: Kaldi's FasterDecoder from PyPI ``kaldi-decoder``; CPU, one
            utterance at a time, best path only; ``search_beam``, ``min/max_active_states`` are its
            beam and token limits; 1.3x faster than k2 on one core at equal words) or ``"k2"``
            (``k2.intersect_dense_pruned``: batches, lattices, GPU).
        word_insertion_penalty: cost (log base e, graph units) added for every word a path emits,
            Kaldi's ``lattice-add-penalty --word-ins-penalty`` that ``local/score.sh`` sweeps over 0,
            0.5 and 1 beside the LM weight. Positive values trade insertions for deletions. Both
            backends search a copy of the graph with the penalty in its arc scores
            (:meth:`hybrid_asr.decoding.search.Searcher.graph_for`).
        sweep: how ``decode-dataset`` runs a sweep over several acoustic scales and penalties:
            ``"search"`` (one search per setting, with ``backend``) or ``"lattice"`` (one k2
            lattice per utterance, searched at the middle of the sweep's acoustic scales (geometric)
            and penalties within ``output_beam``, then the best path of every setting through that lattice with
            its arcs rescored: Kaldi's ``local/score.sh`` way, one search whatever the sweep's
            size; a setting's best path can differ where it fell outside the lattice beam).
        device: where the acoustic model and k2's search run: ``"cpu"`` or ``"cuda"`` (the current
            GPU; Kaldi's FasterDecoder stays on the CPU). A property of the run, not of the
            graph: never written to ``search_config.json``.
    """

    acoustic_scale: float = bounded(0.2, gt=0)
    search_beam: float = bounded(16.0, gt=0)
    output_beam: float = bounded(8.0, gt=0)
    min_active_states: int = bounded(30, ge=1)
    max_active_states: int = bounded(7000, ge=1)
    backend: str = "kaldi"
    lm_scale: float = bounded(1.0, gt=0)
    word_insertion_penalty: float = bounded(0.0)
    sweep: str = "search"
    device: str = "cpu"

    def __post_init__(self):
        check_bounds(self)
        if self.backend not in ("k2", "kaldi"):
            raise ConfigError(f"search backend must be k2 or kaldi, not {self.backend!r}")
        if self.sweep not in ("search", "lattice"):
            raise ConfigError(f"sweep must be search or lattice, not {self.sweep!r}")
        if self.device not in ("cpu", "cuda"):
            raise ConfigError(f"device must be cpu or cuda, not {self.device!r}")

    def torch_device(self) -> torch.device:
        """:attr:`device` as a torch device.

        Raises:
            ConfigError: ``"cuda"`` and torch sees no CUDA device.
        """
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device cuda was asked for, but torch sees no CUDA device")
        return torch.device(self.device)

    def normalized(self) -> "SearchConfig":
        """The same search with ``lm_scale`` 1: acoustic scale, beams and word insertion penalty
        divided by it."""
        if self.lm_scale == 1.0:
            return self
        k = self.lm_scale
        return replace(self, acoustic_scale=self.acoustic_scale / k, search_beam=self.search_beam / k,
                       output_beam=self.output_beam / k, word_insertion_penalty=self.word_insertion_penalty / k,
                       lm_scale=1.0)


@dataclass
class ModelBundle:
    """An acoustic model with everything needed to turn audio into senone log-likelihoods.

    Attributes:
        model: the acoustic model.
        feature_config: front-end settings the model was trained on.
        cmvn: global CMVN statistics of the training data.
        log_priors: float32 ``[S]`` log p(s).
        topology: HMM topology (phones, states, transitions; the pdf-ids of a monophone model).
        tree: decision tree of a context-dependent model (senones = its pdf-ids), else None.
    """

    model: AcousticModel
    feature_config: FeatureConfig
    cmvn: CmvnStats
    log_priors: torch.Tensor
    topology: HmmTopology
    tree: Optional[DecisionTree] = None

    @property
    def num_pdfs(self) -> int:
        """Model outputs: the tree's senones, or the topology's pdfs for a monophone model."""
        return self.tree.num_pdfs if self.tree is not None else self.topology.num_pdfs

    def hmm_graph(self) -> "HmmGraph":
        """The H of this model (context-dependent if it has a tree), before rendering."""
        from hybrid_asr.graph.h import monophone_hmm_graph
        from hybrid_asr.graph.h_cd import cd_hmm_graph

        if self.tree is not None:
            return cd_hmm_graph(self.topology, self.tree)
        return monophone_hmm_graph(self.topology)

    def make_h(self, self_loop_scale: float = 1.0, hmm_states: bool = False) -> "k2.Fsa":
        """The H transducer with self-loops matching this model (for alignment); ``hmm_states``
        adds the monophone HMM state of every arc (:meth:`HmmGraph.with_self_loops`)."""
        return self.hmm_graph().with_self_loops(self.topology, self_loop_scale, hmm_states)

    @property
    def graph_file(self) -> str:
        """File name of this model's decoding graph: ``HCLG.pt`` with a tree, else ``HLG.pt``."""
        return DECODING_GRAPHS[0] if self.tree is not None else DECODING_GRAPHS[1]

    def nonfinite(self) -> str:
        """What in the model's weights and buffers or the log priors is NaN or infinite, as one
        phrase naming the tensors and their counts; "" when everything is finite."""
        found = []
        weights = nonfinite_tensors(state_tensors(self.model))
        if weights:
            found.append("model " + describe_nonfinite(weights))
        priors = nonfinite_tensors([("log priors", self.log_priors)])
        if priors:
            found.append(f"{priors[0][1]:,} of the {priors[0][2]:,} log priors are NaN/Inf")
        return ", ".join(found)

    def save(self, path: Union[str, Path]) -> None:
        """Write the model files of the bundle (each atomically) into directory ``path``, then
        the manifest ``bundle.json`` (removed first, written last: its presence marks a complete
        model directory).

        Raises:
            TrainingDivergedError: a weight or prior is NaN or infinite (:meth:`nonfinite`): the
                manifest of an earlier model in ``path`` is removed and nothing is written.
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST).unlink(missing_ok=True)  # the directory is incomplete until the new manifest is written
        bad = self.nonfinite()
        if bad:
            raise TrainingDivergedError(f"{out}: not saved as a model: {bad}: training diverged (lower --lr)")
        with atomic_path(out / "model.pt") as tmp:
            torch.save(self.model.state_dict(), tmp)
        self.model.config.save(out / "model_config.json")
        self.feature_config.save(out / "feature_config.json")
        write_text_atomic(out / "cmvn.json", json.dumps(self.cmvn.to_dict()))
        with atomic_path(out / "priors.pt") as tmp:
            torch.save(self.log_priors, tmp)
        if self.tree is not None:
            self.tree.save(out / "tree.json")
        elif (out / "tree.json").exists():
            (out / "tree.json").unlink()
        self.topology.save(out / "topology.json")
        files = list(MODEL_FILES) + (["tree.json"] if self.tree is not None else [])
        manifest = {"format_version": MANIFEST_VERSION,
                    "kind": "context-dependent" if self.tree is not None else "monophone",
                    "model_type": self.model.config.type, "num_pdfs": self.num_pdfs,
                    "feature_config": asdict(self.feature_config),
                    "phone_set": self.topology.phone_set_fingerprint(),
                    "files": {f: file_sha256(out / f) for f in files}}
        write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")

    @classmethod
    def load(cls, path: Union[str, Path]) -> "ModelBundle":
        """Load a bundle, checking every part against the manifest before using it.

        Raises:
            InputError: one line naming the file: the directory or a file is missing, the
                manifest is absent (an interrupted write, or a directory made before manifests)
                or names another version, a file differs from its hash in the manifest (changed
                or swapped since the model was saved), a file would need code to load, the
                parts disagree (priors, model outputs and tree of different sizes), or a weight
                or prior is NaN or infinite (a diverged model: names the tensors).
        """
        d = Path(path)
        if not d.is_dir():
            raise InputError(d, "model directory does not exist" if not d.exists() else "is not a directory")
        manifest = read_manifest(d)
        for f, digest in manifest["files"].items():
            if not (d / f).is_file():
                raise InputError(d / f, "missing from the model directory")
            if file_sha256(d / f) != digest:
                raise InputError(d / f, f"differs from the file {MANIFEST} was written with "
                                 "(changed or replaced after the model was saved)")
        model = create_model(load_model_config(d / "model_config.json"))
        try:
            model.load_state_dict(_load_tensors(d / "model.pt"))
        except RuntimeError as e:
            raise InputError(d / "model.pt", f"does not match model_config.json: {str(e).splitlines()[0]}") from None
        model.eval()
        bad = nonfinite_tensors(state_tensors(model))
        if bad:
            raise InputError(d / "model.pt", f"{describe_nonfinite(bad)}: training diverged, the model is "
                             "unusable (retrain it with a lower --lr)")
        cmvn = CmvnStats.from_dict(json.loads((d / "cmvn.json").read_text()))
        tree = DecisionTree.load(d / "tree.json") if "tree.json" in manifest["files"] else None
        priors = _load_tensors(d / "priors.pt")
        if not isinstance(priors, torch.Tensor) or priors.dim() != 1:
            raise InputError(d / "priors.pt", "is not a 1-D tensor of log priors")
        bad = nonfinite_tensors([("log priors", priors)])
        if bad:
            raise InputError(d / "priors.pt", f"{bad[0][1]:,} of its {bad[0][2]:,} log priors are NaN or infinite: the "
                             "model is unusable (retrain it)")
        bundle = cls(model, FeatureConfig.load(d / "feature_config.json"), cmvn, priors,
                     HmmTopology.load(d / "topology.json"), tree)
        sizes = {"priors.pt": priors.numel(), "model_config.json (num_pdfs)": model.config.num_pdfs,
                 "tree.json or topology.json": bundle.num_pdfs}
        if len(set(sizes.values())) != 1 or bundle.num_pdfs != manifest["num_pdfs"]:
            raise InputError(d / "priors.pt", "sizes of the model's parts disagree: " +
                             ", ".join(f"{k} {v}" for k, v in sizes.items()) + f", {MANIFEST} {manifest['num_pdfs']}")
        return bundle

    def check_lang(self, model_dir: Union[str, Path], lang_dir: Union[str, Path], phone_pairs) -> None:
        """Check that a lang dir's phones and ids (``phone_pairs``: ``(phone, id)`` in id order,
        as :attr:`hybrid_asr.lang.Lang.phone_pairs`) are the model's.

        Raises:
            InputError: they differ (names both directories and the first difference).
        """
        mine = list(zip(self.topology.phones, self.topology.phone_ids))
        theirs = list(phone_pairs)
        if mine != theirs:
            diff = next((f"{a} vs {b}" for a, b in zip(theirs, mine) if a != b),
                        f"{len(theirs)} vs {len(mine)} phones")
            raise InputError(Path(lang_dir) / "phones.txt", f"its phone set is not the one model {model_dir} was "
                             f"trained with (first difference, lang vs model: {diff}); use the lang dir of "
                             "the model's training or one prepared over the same phones")

    def check_features(self, model_dir: Union[str, Path], store_dir: Union[str, Path],
                       store_config: FeatureConfig) -> None:
        """Check that a feature store was made by the model's front end.

        Raises:
            InputError: a setting differs (names the store, the model and the settings).
        """
        mine, theirs = asdict(self.feature_config), asdict(store_config)
        keys = ("kind", "sample_rate", "num_mel_bins", "num_ceps", "deltas", "frame_length_ms", "frame_shift_ms")
        diff = [f"{k} {theirs[k]} vs {mine[k]}" for k in keys if mine[k] != theirs[k]]
        if diff:
            raise InputError(Path(store_dir) / "index.json", f"features were made with another front end than "
                             f"model {model_dir} (store vs model: {', '.join(diff)}); recompute them")


def file_sha256(path: Union[str, Path]) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: Union[str, Path]) -> dict:
    """The ``bundle.json`` of a model directory.

    Raises:
        InputError: it is missing (the model was not completely written, or predates manifests),
            unreadable, or of another format version.
    """
    f = Path(model_dir) / MANIFEST
    if not f.is_file():
        raise InputError(f, "missing: the model directory is incomplete (training was interrupted, or it was "
                         "made by a hybrid-asr without manifests); train it again")
    try:
        manifest = json.loads(f.read_text(encoding="utf-8"))
        if manifest.get("format_version") != MANIFEST_VERSION:
            raise InputError(f, f"format version {manifest.get('format_version')!r}, this hybrid-asr reads "
                             f"{MANIFEST_VERSION}")
        manifest["files"], manifest["num_pdfs"]  # noqa: B018 - both are required
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(f, f"is not a model manifest ({type(e).__name__}: {e})") from None
    return manifest


def _load_tensors(path: Path):
    """``torch.load`` restricted to tensors and plain containers (never runs code from the file).

    Raises:
        InputError: unreadable, or holds anything else.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - pickle raises many types; all mean "not a tensor file"
        raise InputError(path, f"cannot be loaded as tensors only: {str(e).splitlines()[0][:200]}") from None


def save_graph(path: Union[str, Path], graph: "k2.Fsa", lang_dir: Union[str, Path], search: SearchConfig,
               info: Optional[dict] = None, name: str = "HLG.pt") -> None:
    """Add the decoding graph (as ``name``, one of :data:`DECODING_GRAPHS`; another graph file
    of the directory is removed), the symbol tables of ``lang_dir`` (``words.txt``,
    ``phones.txt``), the lexicon part of the lang dir (``lang/``), the search settings and, last,
    ``graph_info.json`` (how the graph was built: ``info`` plus its size and SHA-256; removed
    first, so that its presence marks a complete graph) to a model directory. The graph is also
    stored as an OpenFst binary (``HCLG.fst`` / ``HLG.fst``, :func:`openfst_path`), the form
    Kaldi's FasterDecoder searches, so that decoding processes read it instead of converting the
    k2 graph each (:func:`load_openfst`)."""
    if name not in DECODING_GRAPHS:
        raise ValueError(f"graph file name must be one of {DECODING_GRAPHS}, not {name!r}")
    from hybrid_asr.graph.openfst import to_openfst
    from hybrid_asr.lang.lang_dir import save_fsa

    d = Path(path)
    (d / "graph_info.json").unlink(missing_ok=True)  # no graph until the new graph_info.json is written
    save_fsa(graph, d / name)
    fst_file = (d / name).with_suffix(".fst")
    with atomic_path(fst_file) as tmp:
        to_openfst(graph).write(str(tmp))
    for other in DECODING_GRAPHS:
        for f in (d / other, (d / other).with_suffix(".fst")):
            if other != name and f.exists():
                f.unlink()
    info = {"lang_dir": str(Path(lang_dir).resolve()), **(info or {}), "states": int(graph.shape[0]),
            "arcs": int(graph.num_arcs), "sha256": file_sha256(d / name), "openfst_sha256": file_sha256(fst_file)}
    for table in ("words.txt", "phones.txt"):
        with atomic_path(d / table) as tmp:
            shutil.copyfile(Path(lang_dir) / table, tmp)
    # the lexicon part of the lang dir (no G), so that word times work without the lang dir
    (d / "lang").mkdir(exist_ok=True)
    for name in ("phones.txt", "words.txt", "lexicon.txt", "L.pt", "lang.json"):  # lang.json last: complete
        if (Path(lang_dir) / name).is_file():
            with atomic_path(d / "lang" / name) as tmp:
                shutil.copyfile(Path(lang_dir) / name, tmp)
    save_search_config(d, search)
    write_text_atomic(d / "graph_info.json", json.dumps(info, indent=2) + "\n")  # last: marks the graph complete


def save_search_config(path: Union[str, Path], search: SearchConfig) -> None:
    """Write the default search settings of a model directory (``search_config.json``; all but
    :attr:`SearchConfig.device`, which belongs to a run)."""
    fields = {k: v for k, v in asdict(search).items() if k != "device"}
    write_text_atomic(Path(path) / "search_config.json", json.dumps(fields, indent=2) + "\n")


def openfst_path(path: Union[str, Path]) -> Path:
    """The OpenFst copy of a model directory's decoding graph (``HCLG.fst`` or ``HLG.fst``).

    Raises:
        InputError: the directory has no decoding graph (as :func:`graph_path`).
    """
    return graph_path(path).with_suffix(".fst")


def load_openfst(path: Union[str, Path]):
    """The decoding graph of a model directory as ``make-graph`` stored it for Kaldi's search: a
    ``kaldifst.StdVectorFst`` (arc-sorted, costs = negated k2 scores, word insertion penalty 0),
    or None where the directory has no stored copy (a graph made before it was stored: the
    caller converts the k2 graph).

    Raises:
        InputError: the file differs from the one ``graph_info.json`` was written with.
    """
    import kaldifst

    d = Path(path)
    f = openfst_path(d)
    try:
        expected = json.loads((d / "graph_info.json").read_text()).get("openfst_sha256")
    except (OSError, ValueError):
        return None
    if expected is None or not f.is_file():
        return None
    if file_sha256(f) != expected:
        raise InputError(f, "differs from the file graph_info.json was written with (changed or replaced after "
                         "make-graph)")
    return kaldifst.StdVectorFst.read(str(f))


def load_search_config(path: Union[str, Path]) -> SearchConfig:
    """The default search settings of a model directory (``search_config.json``).

    Raises:
        InputError: the file is missing, not JSON, or has unknown fields or values out of range.
    """
    f = Path(path) / "search_config.json"
    if not f.is_file():
        raise InputError(f, "missing from the model directory (run make-graph)")
    try:
        return SearchConfig(**json.loads(f.read_text()))
    except (ValueError, TypeError) as e:
        raise InputError(f, f"is not a search config: {e}") from None


def graph_path(path: Union[str, Path]) -> Path:
    """The decoding graph file of a model directory (``HCLG.pt`` or ``HLG.pt``).

    Raises:
        InputError: the directory has neither (names ``HLG.pt``).
    """
    d = Path(path)
    for name in DECODING_GRAPHS:
        if (d / name).is_file():
            return d / name
    raise InputError(d / DECODING_GRAPHS[1], "missing from the model directory (run make-graph)")


def load_graph(path: Union[str, Path], bundle: Optional[ModelBundle] = None):
    """``(decoding graph, word SymbolTable, SearchConfig)`` of a model directory.

    Args:
        path: the model directory.
        bundle: its model, loaded: the graph is checked against it (its pdf labels within the
            model's outputs; the phone set it was built over, from ``graph_info.json``, the
            model's).

    Raises:
        InputError: a file is missing or unreadable, or the graph was built for another model.
    """
    d = Path(path)
    graph_file = graph_path(d)
    for f in GRAPH_FILES:
        if not (d / f).is_file():
            raise InputError(d / f, "missing from the model directory (run make-graph)")
    search = load_search_config(d)
    try:
        info = json.loads((d / "graph_info.json").read_text())
    except ValueError as e:
        raise InputError(d / "graph_info.json", f"is not valid JSON: {e}") from None
    if "sha256" in info and file_sha256(graph_file) != info["sha256"]:
        raise InputError(graph_file, "differs from the file graph_info.json was written with (changed or replaced "
                         "after make-graph)")
    import k2

    from hybrid_asr.lang.lang_dir import load_fsa

    graph = load_fsa(graph_file)
    if bundle is not None:
        top = int(graph.labels.max()) if graph.num_arcs else 0
        if top > bundle.num_pdfs:
            raise InputError(graph_file, f"reads pdf-id {top - 1}, the model has {bundle.num_pdfs} pdfs: the graph "
                             "was built for another model (run make-graph)")
        built_over = info.get("phone_set")
        if built_over is not None and built_over != bundle.topology.phone_set_fingerprint():
            raise InputError(graph_file, "was built over another phone set than the model's (graph_info.json "
                             "phone_set): run make-graph with the model's lang dir")
    return graph, k2.SymbolTable.from_file(str(d / "words.txt")), search


__all__ = ["DECODING_GRAPHS", "MANIFEST", "ModelBundle", "SearchConfig", "file_sha256", "graph_path", "load_graph",
           "load_openfst", "openfst_path", "read_manifest", "save_graph", "save_search_config"]
