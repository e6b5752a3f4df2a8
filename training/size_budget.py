"""A model within the size budget: the dense file when it fits, else quantized (training/model_file.py)
with the setting that scores best on validation.

A setting keeps as many input rows as fit (the rows of largest norm, as fastText's `quantize -cutoff`
chooses them; every row when they all fit), at 1 or 2 dimensions a byte, norms apart, and the
output matrix quantized too when a dense one would take more than a quarter of the budget. Each is
scored as the file it writes, so what is chosen is what ships.
"""

from collections.abc import Callable
from dataclasses import dataclass

import fasttext_format as ff
from training.errors import TrainingError
from training.model_file import FastTextModel, largest_rows, quantize, quantized_bytes

MIB = 2**20
DEFAULT_BUDGET = 10 * MIB
# 4 dimensions a byte never won: 3 to 5 points of P@1 below dsub 1 on PyPI summaries (50,000 to
# 600,000) and Debian descriptions, at the same budget (training/REPORT.md).
DSUBS = (1, 2)
MIN_ROWS = 256  # fewer rows than this are kept only when the model has no more


@dataclass(frozen=True)
class Setting:
    rows: int
    dsub: int
    qout: bool

    def describe(self) -> str:
        return (f"{self.rows:,} rows, {self.dsub} dimension{'s' if self.dsub > 1 else ''} a byte, norms apart"
                + (", output quantized" if self.qout else ""))


@dataclass
class Shipped:
    """The model as it will be written, the setting that made it (None: dense), and every setting scored."""

    model: FastTextModel
    setting: Setting | None
    tried: list[dict]


def output_quantized(labels: int, dim: int, budget: int) -> bool:
    """Whether the output matrix is quantized too: dense, it would take over a quarter of the budget."""
    return labels * dim * 4 > budget / 4


def estimate(rows: int, dim: int, labels: int, dsub: int, budget: int) -> int:
    """About the bytes of a quantized model of `rows` input rows, before its words are known (for
    offering candidates): fasttext_format's sizes, with ~12 bytes a row for its dictionary entry or
    pruned-bucket pair and ~24 a label."""
    output = ff.quant_matrix_bytes(labels, dim, 2, True) if output_quantized(labels, dim, budget) \
        else ff.dense_matrix_bytes(labels, dim)
    return ff.file_bytes(ff.dictionary_bytes(12 * rows + 24 * labels, None),
                         ff.quant_matrix_bytes(rows, dim, dsub, True), output)


def fits(rows: int, dim: int, labels: int, budget: int, dsub: int) -> bool:
    return estimate(rows, dim, labels, dsub, budget) <= 0.95 * budget


def rows_within(model: FastTextModel, budget: int, dsub: int, qout: bool) -> int:
    """The most input rows a quantized file of the model keeps within the budget (at most all of them)."""
    fixed = quantized_bytes(model, 0, dsub=dsub, qout=qout)
    per_row = quantized_bytes(model, 1, dsub=dsub, qout=qout) - fixed
    return int(min(model.vocabulary.rows, max(0, (budget - fixed) // per_row)))


def settings_within(model: FastTextModel, budget: int) -> list[Setting]:
    """From the smallest dsub up: the rows that fit at each, until one keeps every row."""
    qout = output_quantized(len(model.labels), model.dim, budget)
    settings = []
    for dsub in (d for d in DSUBS if d <= model.dim):
        rows = rows_within(model, budget, dsub, qout)
        if rows >= min(MIN_ROWS, model.vocabulary.rows):
            settings.append(Setting(rows, dsub, qout))
        if rows >= model.vocabulary.rows:
            break
    return settings


def shippable(model: FastTextModel, budget: int, score: Callable[[FastTextModel], dict],
              criterion: Callable[[dict], float], log) -> Shipped:
    """The model as a file of at most `budget` bytes: itself when it fits dense, else the quantized
    setting whose file scores best (`score`, ranked by `criterion`)."""
    if model.vocabulary.pruned is None and model.file_bytes() <= budget:
        log(f"  {model.file_bytes():,} bytes dense, within the budget of {budget:,}: not quantized")
        return Shipped(model, None, [])
    settings = settings_within(model, budget)
    if not settings:
        raise TrainingError(f"no quantization brings this model ({model.dim} dimensions, {len(model.labels)} labels) "
                            f"under {budget:,} bytes; raise --size-budget")
    best, tried = None, []
    for setting in settings:
        quantized = quantize_within(model, setting, budget)
        scores = score(quantized)
        tried.append({"setting": setting.describe(), "rows": setting.rows, "dsub": setting.dsub, "qout": setting.qout,
                      "bytes": quantized.file_bytes(), **scores})
        log(f"  quantized, {setting.describe()}: {quantized.file_bytes():,} bytes, P@1 {scores['p_at_1']:.4f}, "
            f"R@5 {scores['r_at_5']:.4f}")
        if best is None or criterion(scores) > criterion(best[2]):
            best = (quantized, setting, scores)
    return Shipped(best[0], best[1], tried)


def shipped_like(model: FastTextModel, setting: Setting | None, budget: int) -> FastTextModel:
    """The model within the budget as another was shipped: dense when that one was and this one fits,
    else quantized at its dsub with as many rows as fit."""
    if setting is None and model.vocabulary.pruned is None and model.file_bytes() <= budget:
        return model
    setting = setting or settings_within(model, budget)[-1]
    rows = rows_within(model, budget, setting.dsub, setting.qout)
    return quantize_within(model, Setting(rows, setting.dsub, setting.qout), budget)


def quantize_within(model: FastTextModel, setting: Setting, budget: int) -> FastTextModel:
    """The model quantized with `setting`, with fewer rows when its words' names take more than estimated."""
    rows = setting.rows
    while True:
        keep = None if rows >= model.vocabulary.rows else largest_rows(model, rows)
        quantized = quantize(model, keep=keep, dsub=setting.dsub, qnorm=True, qout=setting.qout)
        size = quantized.file_bytes()
        if size <= budget:
            return quantized
        rows = int(rows * budget / size * 0.99)
        if rows < min(MIN_ROWS, model.vocabulary.rows):
            raise TrainingError(f"the model does not fit {budget:,} bytes with {MIN_ROWS} rows; raise --size-budget")
