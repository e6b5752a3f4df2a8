"""Tests of training/quantization.py on real fastText models (tiny, trained and quantized here)."""

import math
import shutil
import subprocess

import numpy as np
import pytest

from fasttext_process import FastTextProcess
from support import write_tiny_training_file
from training import quantization as qz

ROWS = 300  # rows kept by -cutoff: fastText's product quantizer needs at least 256


def quantize(binary, dense, output_prefix, *options: str):
    """`fasttext quantize` of `dense` into OUTPUT_PREFIX.ftz (fastText reads OUTPUT_PREFIX.bin)."""
    shutil.copyfile(dense, output_prefix.with_suffix(".bin"))
    train = output_prefix.with_name("train.txt")
    write_tiny_training_file(train)
    subprocess.run([str(binary), "quantize", "-input", str(train), "-output", str(output_prefix),
                    "-cutoff", str(ROWS), *options, "-thread", "1", "-verbose", "0"], check=True)
    return output_prefix.with_suffix(".ftz")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory, tiny_model, fasttext_binary):
    """The tiny model quantized as the default preset does (-dsub 1 -qnorm), before and after the refit."""
    work = tmp_path_factory.mktemp("quantized")
    before = quantize(fasttext_binary, tiny_model, work / "q", "-dsub", "1", "-qnorm")
    after = work / "refitted.ftz"
    shutil.copyfile(before, after)
    summary = qz.refit_norms(tiny_model, after)
    return {"before": before, "after": after, "summary": summary}


def decoded(model):
    """The dictionary, quantized directions and norms of the input rows of a -qnorm model."""
    data = model.read_bytes()
    dictionary = qz.read_dictionary(data)
    q = qz.quantized_input(data, dictionary)
    levels = np.frombuffer(data, "<f4", 256, q.norm_centroids_offset)
    return dictionary, qz.decode_directions(q), levels[np.frombuffer(data, np.uint8, q.rows, q.norm_codes_offset)]


def test_refit_keeps_size_format_and_direction_codes(quantized):
    before, after = quantized["before"].read_bytes(), quantized["after"].read_bytes()
    assert len(after) == len(before)
    q = qz.quantized_input(before, qz.read_dictionary(before))
    changed = [i for i in range(len(before)) if before[i] != after[i]]
    norm_section = range(q.norm_codes_offset, q.norm_centroids_offset + 4 * 256)
    assert changed and all(i in norm_section for i in changed)
    assert quantized["summary"]["rows"] == ROWS


def test_refitted_norms_fit_the_dense_rows(quantized, tiny_model):
    dense, matrix = qz.dense_input_rows(tiny_model)
    dictionary, directions, norms = decoded(quantized["after"])
    exact = np.asarray(matrix[qz.source_rows(dictionary, dense)])
    best = (exact * directions).sum(axis=1) / (directions * directions).sum(axis=1)
    # Every row's norm is within half a step of a log-spaced grid from the smallest to the largest best scale.
    half_step = math.log(best.max() / best.min()) / 255 / 2
    assert np.all(np.abs(np.log(norms / best)) <= half_step + 1e-5)
    assert quantized["summary"]["worst_relative_error_after"] <= math.exp(half_step) - 1 + 1e-5
    assert quantized["summary"]["largest_norm"] == pytest.approx(float(best.max()), rel=1e-5)


def test_refitted_model_loads_and_agrees_with_the_dense_model(quantized, tiny_model, fasttext_binary):
    lines = ["python script with a pip module", "an mp3 music player and mixer", "http proxy for a website"]
    answers = {}
    for name, model in [("dense", tiny_model), ("refitted", quantized["after"])]:
        process = FastTextProcess(str(fasttext_binary), str(model), k=2, timeout=10)
        try:
            answers[name] = [[label for label, _ in answer] for answer in process.predict(lines)]
        finally:
            process.close()
    assert answers["refitted"] == answers["dense"]


def test_fasttext_options_drop_refit_norms_and_check_it():
    options = {"cutoff": 10, "dsub": 1, "qnorm": True, qz.REFIT_NORMS: True}
    assert qz.fasttext_options(options) == {"cutoff": 10, "dsub": 1, "qnorm": True}
    assert qz.fasttext_options(None) == {}
    assert qz.fasttext_options({"qnorm": True, "retrain": True}) == {"qnorm": True, "retrain": True}
    with pytest.raises(SystemExit, match="needs qnorm and no retrain"):
        qz.fasttext_options({"qnorm": True, "retrain": True, qz.REFIT_NORMS: True})
    with pytest.raises(SystemExit, match="needs qnorm and no retrain"):
        qz.fasttext_options({"cutoff": 10, qz.REFIT_NORMS: True})


def test_refit_rejects_a_model_without_norm_codebook(tmp_path, tiny_model, fasttext_binary):
    plain = quantize(fasttext_binary, tiny_model, tmp_path / "plain", "-dsub", "1")
    with pytest.raises(ValueError, match="without -qnorm"):
        qz.refit_norms(tiny_model, plain)


def test_refit_rejects_models_given_the_wrong_way_round(tmp_path, tiny_model, quantized):
    with pytest.raises(ValueError, match="give the unquantized .bin"):
        qz.refit_norms(quantized["before"], quantized["after"])
    dense_copy = tmp_path / "dense.bin"
    shutil.copyfile(tiny_model, dense_copy)
    with pytest.raises(ValueError, match="not quantized"):
        qz.refit_norms(tiny_model, dense_copy)
    not_a_model = tmp_path / "junk.ftz"
    not_a_model.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="not a fastText model"):
        qz.refit_norms(tiny_model, not_a_model)


def test_refit_rejects_a_quantized_model_of_another_dense_model(tmp_path, fasttext_binary, quantized):
    train = tmp_path / "train.txt"
    write_tiny_training_file(train)
    subprocess.run([str(fasttext_binary), "supervised", "-input", str(train), "-output", str(tmp_path / "other"),
                    "-dim", "10", "-loss", "ova", "-wordNgrams", "2", "-bucket", "2000", "-thread", "1",
                    "-verbose", "0"], check=True)
    with pytest.raises(ValueError, match="different -bucket"):
        qz.refit_norms(tmp_path / "other.bin", quantized["after"])
