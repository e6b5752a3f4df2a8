"""A model within the size budget: the dense file when it fits, else the binary's own `quantize`
with the settings that lose least on validation.

The setting keeps as many input rows as fit (`-cutoff`, the rows of largest norm, as fastText
chooses them; rows no id uses have norm 0 and go first), at `-dsub` 1, 2 or 4 dimensions a
byte, norms apart (`-qnorm`, their codebook refitted from the dense rows: training/quantization.py),
and a quantized output matrix too (`-qout`, 2 dimensions a byte) when a dense one would take
more than a quarter of the budget. A preset's own tuned options replace it. The quantized
model is scored on validation with the binary, so the report can say what the budget cost.
"""

import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import calibration, quantization
from training import fasttext_cli as ft
from training.model_file import FastTextModel, write_model

MIB = 2**20
DEFAULT_BUDGET = 10 * MIB
DSUBS = (1, 2, 4)
_KSUB = 256  # centroids per sub-quantizer


@dataclass
class Shipped:
    path: Path
    quantize: dict | None  # the fastText quantize options, None when dense
    scores: dict | None    # validation scores of the quantized model (None when dense: the dense scores hold)
    tried: list[dict]
    preset: bool = False  # the options are a preset's own: kept as they are for the refit model
    factor: float = 1.0  # the output's scale fitted again after quantization


def quantized_bytes(model: FastTextModel, rows: int, dsub: int, qout: bool) -> int:
    """About what `fasttext quantize -cutoff rows -dsub dsub -qnorm [-qout]` writes for the model."""
    dim, labels = model.dim, len(model.labels)
    codebook = dim * _KSUB * 4 + 16
    per_row = math.ceil(dim / dsub) + 1 + 12  # codes, norm code, dictionary entry or pruned-bucket pair
    output = labels * math.ceil(dim / 2) + labels + codebook + _KSUB * 4 if qout else labels * dim * 4 + 16
    label_names = sum(len(label.encode()) + 19 for label in model.labels)
    return 2048 + label_names + codebook + _KSUB * 4 + rows * per_row + output


def rows_within(model: FastTextModel, budget: int, dsub: int, qout: bool) -> int:
    """The most input rows a quantized file of the model can keep within the budget (at most those in use)."""
    fixed = quantized_bytes(model, 0, dsub, qout)
    return int(min(used_rows(model), (budget - fixed) // (quantized_bytes(model, 1, dsub, qout) - fixed)))


def used_rows(model: FastTextModel) -> int:
    return int(np.count_nonzero(np.any(model.input != 0, axis=1)))


def output_quantized(model: FastTextModel, budget: int) -> bool:
    """Whether the output matrix is quantized too: when dense it would take over a quarter of the
    budget, and it has the 256 rows fastText's quantizer needs."""
    return len(model.labels) >= _KSUB and len(model.labels) * model.dim * 4 > budget / 4


def setting_within(model: FastTextModel, budget: int) -> dict | None:
    """The setting that loses least for the budget: the smallest dsub at which every row in use
    fits, else 2 dimensions a byte with as many rows as fit (measured on Debian texts: dsub 1
    beat 2 and 2 beat 4 at the same rows, training/REPORT.md); None when nothing fits."""
    qout = output_quantized(model, budget)
    used = used_rows(model)
    for dsub in DSUBS:
        if dsub <= model.dim and rows_within(model, budget, dsub, qout) >= used:
            break
    else:
        dsub = min(2, model.dim)
    rows = rows_within(model, budget, dsub, qout)
    if rows < _KSUB:
        return None
    return {"cutoff": rows, "dsub": dsub, "qnorm": True, "qout": qout, quantization.REFIT_NORMS: True}


def fits_without_dropping_rows(model: FastTextModel, budget: int) -> bool:
    """Whether the model fits the budget dense, or quantized at 2 dimensions a byte with every row in use."""
    if model.file_bytes() <= budget:
        return True
    return rows_within(model, budget, min(2, model.dim), output_quantized(model, budget)) >= used_rows(model)


def quantize(dense: Path, options: dict, train_file: Path, threads: int, log=lambda message: None) -> Path:
    """`fasttext quantize` of DENSE (a .bin) into a .ftz beside it, the norms refitted when asked."""
    prefix = dense.with_suffix("")
    ft.quantize(ft.fasttext_binary(), train_file, prefix, quantization.fasttext_options(options), threads=threads,
                quiet=True)
    quantized = prefix.with_suffix(".ftz")
    if options.get(quantization.REFIT_NORMS):
        log(f"  norm codebook refitted: {quantization.refit_norms(dense, quantized)}")
    return quantized


def fasttext_args(options: dict | None) -> list[str]:
    """The quantize options as fastText's command line takes them (refit_norms is done after it)."""
    return ft.params_to_args({k: v for k, v in quantization.fasttext_options(options).items()
                              if not isinstance(v, bool)}) + \
        [f"-{k}" for k, v in quantization.fasttext_options(options).items() if v is True]


def within_budget(model: FastTextModel, work: Path, budget: int, score: Callable[[Path], dict],
                  criterion: Callable[[dict], float], train_file: Path, threads: int, log,
                  preset_options: dict | None = None,
                  temperature: Callable[[Path], float] | None = None) -> Shipped:
    """The model as a file of at most `budget` bytes, quantized with the best setting when it must be.

    `temperature(path)`, when given, fits the quantized model's calibration again; its output
    matrix is scaled by it, and the factor kept for the refit model.

    `preset_options`, a preset's own tuned quantize options, are the only setting tried when given,
    and are applied whatever the size.
    """
    work.mkdir(parents=True, exist_ok=True)
    dense = work / "dense.bin"
    write_model(model, dense)
    size = dense.stat().st_size
    if size <= budget and not preset_options:
        log(f"  dense model: {size:,} bytes, within the budget of {budget:,}: not quantized")
        return Shipped(dense, None, None, [])
    settings = [dict(preset_options)] if preset_options else [s for s in [setting_within(model, budget)] if s]
    if not settings:
        raise SystemExit(f"error: no quantization brings this model ({model.dim} dimensions, {len(model.labels)} "
                         f"labels) under {budget:,} bytes; raise --size-budget or lower the rank")
    tried, best = [], None
    for i, options in enumerate(settings):
        path = quantize_within(dense, work / f"q{i}.bin", options, budget, train_file, threads, log)
        scores = score(path)
        row = {"options": options, "bytes": path.stat().st_size, **scores}
        tried.append(row)
        log(f"  quantize {_describe(options)}: {row['bytes']:,} bytes, P@1 {scores['p_at_1']:.4f}, "
            f"R@5 {scores['r_at_5']:.4f}, ECE {scores['ece_top5']:.3f}")
        if row["bytes"] <= budget and (best is None or criterion(scores) > criterion(best[1])):
            best = (path, scores, options)
    if best is None:
        raise SystemExit(f"error: quantization left the model over {budget:,} bytes: {tried}")
    path, scores, options = best
    factor = 1.0
    if temperature is not None:
        factor, scores = _calibrated_again(path, model, scores, temperature, score, log)
    return Shipped(path, options, scores, tried, preset=bool(preset_options), factor=factor)


def _calibrated_again(path: Path, model: FastTextModel, scores: dict, temperature: Callable[[Path], float],
                      score: Callable[[Path], dict], log) -> tuple[float, dict]:
    """Scale the quantized file's output by the temperature fitted on its own answers, when that
    lowers the validation calibration error; (the factor kept, the scores)."""
    factor = temperature(path)
    unscaled = path.with_name(path.name + ".unscaled")
    shutil.copyfile(path, unscaled)
    calibration.rescale_output(path, len(model.labels), model.dim, factor)
    rescaled = score(path)
    if rescaled["ece_top5"] < scores["ece_top5"]:
        log(f"  calibrated again after quantization (output x {factor:.3f}): ECE {scores['ece_top5']:.3f} -> "
            f"{rescaled['ece_top5']:.3f}, P@1 {rescaled['p_at_1']:.4f}, R@5 {rescaled['r_at_5']:.4f}")
        unscaled.unlink()
        return factor, rescaled
    log(f"  a temperature fitted again after quantization (x {factor:.3f}) would not lower the ECE "
        f"({scores['ece_top5']:.3f} -> {rescaled['ece_top5']:.3f}): not applied")
    os.replace(unscaled, path)
    return 1.0, scores


def quantize_within(dense: Path, destination: Path, options: dict, budget: int, train_file: Path,
                    threads: int, log=lambda message: None) -> Path:
    """Quantize with `options`; when the file comes out over budget, once more with fewer rows."""
    copy = destination.with_suffix(".bin")
    if copy != dense:
        shutil.copyfile(dense, copy)
    quantized = quantize(copy, options, train_file, threads, log)
    size = quantized.stat().st_size
    if size > budget and "cutoff" in options:
        options["cutoff"] = int(options["cutoff"] * budget / size * 0.98)
        log(f"  {size:,} bytes is over the budget: quantizing again with -cutoff {options['cutoff']}")
        quantized = quantize(copy, options, train_file, threads, log)
    copy.unlink()
    return quantized


def _describe(options: dict) -> str:
    return " ".join(fasttext_args(options)) + (" + refit norms" if options.get(quantization.REFIT_NORMS) else "")
