"""Numeric settings are range-checked where they are declared (the config dataclass field) and
refused on the command line with one line naming the option, before any work starts."""

import dataclasses
import json
import typing

import numpy as np
import pytest

from hybrid_asr.align.audio import TranscriptCheckConfig
from hybrid_asr.bounds import Bounds, field_bounds
from hybrid_asr.bundle import SearchConfig
from hybrid_asr.cli.main import build_parser, main
from hybrid_asr.cli.options import numeric_options_without_bounds
from hybrid_asr.errors import ConfigError, InputError
from hybrid_asr.features.augment import AugmentConfig
from hybrid_asr.features.config import FeatureConfig
from hybrid_asr.features.segment import split_points
from hybrid_asr.features.trim import TrimConfig
from hybrid_asr.graph.decoding_graph import GraphConfig
from hybrid_asr.hmm.tree import TreeConfig
from hybrid_asr.lang.lang_dir import LangConfig
from hybrid_asr.lang.phone_lm import PhoneLmConfig
from hybrid_asr.models import MODEL_TYPES
from hybrid_asr.stages.decode_audio import DecodeOptions
from hybrid_asr.stages.rescore import RescoreConfig
from hybrid_asr.stages.shards import Shard
from hybrid_asr.training import TrainConfig
from hybrid_asr.training.sequence import SequenceConfig
from hybrid_asr.training.spec_augment import SpecAugmentConfig

CONFIGS = [SearchConfig, AugmentConfig, FeatureConfig, TrimConfig, GraphConfig, TreeConfig, LangConfig,
           PhoneLmConfig, DecodeOptions, RescoreConfig, Shard, TrainConfig, SequenceConfig, SpecAugmentConfig,
           TranscriptCheckConfig, *(cls for cls, _ in MODEL_TYPES.values())]


def _is_number(hint) -> bool:
    if typing.get_origin(hint) is typing.Union:
        return any(_is_number(a) for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        return _is_number(typing.get_args(hint)[0])
    return hint in (int, float)


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_numeric_config_field_has_bounds(cls):
    hints = typing.get_type_hints(cls)
    unbounded = [f.name for f in dataclasses.fields(cls) if _is_number(hints[f.name]) and field_bounds(f) is None]
    assert unbounded == []


def test_every_numeric_command_line_option_is_range_checked():
    assert list(numeric_options_without_bounds(build_parser())) == []


def test_every_command_is_available_where_every_package_is(capsys):
    """A command whose code cannot be imported is registered as unavailable (so the others run
    where e.g. k2 is missing); with the full stack installed none is."""
    from hybrid_asr.cli import commands

    assert main(["--help"]) == 0
    assert "unavailable here" not in capsys.readouterr().out
    assert len(commands.REGISTRY) == 31


def test_each_registering_function_is_named_for_its_command():
    """An unavailable command is registered under the name derived from its add_* function, so
    that name must be the command's own."""
    import argparse

    from hybrid_asr.cli import commands

    for register in commands.REGISTRY:
        sub = argparse.ArgumentParser().add_subparsers()
        register(sub)
        assert list(sub.choices) == [register.__name__[len("add_"):].replace("_", "-")]


def test_a_command_that_needs_a_missing_package_fails_in_one_line(monkeypatch, capsys):
    from hybrid_asr.cli import commands

    def add_make_graph(sub):
        raise ModuleNotFoundError("No module named 'k2'", name="k2")

    monkeypatch.setattr(commands, "REGISTRY", [add_make_graph, commands.add_train])
    assert main(["make-graph", "m", "lang"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "hybrid-asr make-graph: error: needs the Python package k2, which cannot be imported here " \
                  "(No module named 'k2')"


@pytest.mark.parametrize("argv, message", [
    (["decode", "m", "x.wav", "--max-segment-seconds", "0.01"], "argument --max-segment-seconds: must be >= 0.1, got 0.01"),
    (["decode", "m", "x.wav", "--max-segment-seconds", "0"], "argument --max-segment-seconds: must be >= 0.1, got 0"),
    (["decode", "m", "x.wav", "--max-segment-seconds", "-5"], "argument --max-segment-seconds: must be >= 0.1, got -5"),
    (["decode", "m", "x.wav", "--trim-margin", "-1"], "argument --trim-margin: must be in [0, 10], got -1"),
    (["decode", "m", "x.wav", "--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
    (["decode", "m", "x.wav", "--search-beam", "inf"], "argument --search-beam: must be > 0, got inf"),
    (["train", "f", "a", "o", "--lr", "nan"], "argument --lr: must be > 0, got nan"),
    (["train", "f", "a", "o", "--dropout", "1"], "argument --dropout: must be in [0, 1), got 1"),
    (["train", "f", "a", "o", "--kernels", "3,x"], "argument --kernels: expected comma-separated values, each an "
                                                   "integer, got '3,x'"),
    (["train", "f", "a", "o", "--epochs", "two"], "argument --epochs: expected an integer, got 'two'"),
    (["prepare-lang", "m", "l", "--cmudict", "--lm-order", "6"], "argument --lm-order: must be in [1, 5], got 6"),
    (["compute-features", "m", "s", "o", "--speed-perturb", "0.9,0"], "argument --speed-perturb: must be > 0, got 0"),
    (["decode-dataset", "m", "f", "o", "--acoustic-scales", "0.1,-2"], "argument --acoustic-scales: must be > 0, got -2"),
    (["align", "f", "l", "o", "--model", "m", "--nj", "0"], "argument --nj: must be >= 1, got 0"),
    (["align-audio", "m", "l", "x.wav", "A", "--warn-gap", "1"], "argument --warn-gap: must be <= 0, got 1"),
])
def test_a_number_out_of_range_is_one_line_and_exit_status_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"hybrid-asr {argv[0]}: error: {message} (see hybrid-asr {argv[0]} --help)\n"


def test_the_global_option_too(capsys):
    assert main(["--num-threads", "0", "score", "r", "h", "o"]) == 2
    assert capsys.readouterr().err == ("hybrid-asr: error: argument --num-threads: must be >= 1, got 0 "
                                       "(see hybrid-asr --help)\n")


def test_configs_check_their_bounds_when_built_and_read_back(tmp_path):
    with pytest.raises(ConfigError, match=r"^max_segment_seconds must be >= 0.1, got 0.01$"):
        DecodeOptions(max_segment_seconds=0.01)
    with pytest.raises(ConfigError, match=r"^margin_seconds must be in \[0, 10\], got -1$"):
        TrimConfig(margin_seconds=-1)
    with pytest.raises(ConfigError, match=r"^kernels must be >= 1, got 0$"):
        MODEL_TYPES["tdnn"][0](feat_dim=40, num_pdfs=10, kernels=(3, 0), dilations=(1, 1))
    (tmp_path / "train_config.json").write_text(json.dumps({**dataclasses.asdict(TrainConfig()), "lr": -0.1}))
    with pytest.raises(InputError, match=r"train_config.json: not a valid training config: lr must be > 0, got -0.1"):
        TrainConfig.load(tmp_path / "train_config.json")


def test_bounds_describe_and_refuse_non_finite_values():
    assert Bounds(ge=0, lt=1).problem(1.0) == "must be in [0, 1), got 1"
    assert Bounds(gt=0).problem(float("nan")) == "must be > 0, got nan"
    assert Bounds(le=0).problem(float("-inf")) == "must be <= 0, got -inf"
    assert Bounds(ge=1).problem((3, 1, 0)) == "must be >= 1, got 0"
    assert Bounds().problem(float("inf")) == "must be a finite number, got inf"
    assert Bounds(ge=1).problem(None) is None and Bounds(gt=0).problem(0.5) is None


def test_split_points_always_advances():
    energy = np.zeros(50)
    cuts = split_points(energy, max_frames=2, min_frames=0, smooth=1)
    pieces = np.diff([0, *cuts, 50])
    assert (pieces >= 1).all() and (pieces <= 2).all()
    with pytest.raises(ValueError, match="at least 2 frames"):
        split_points(energy, max_frames=1, min_frames=0)
