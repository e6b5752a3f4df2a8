"""Named fastText presets: `fasttext supervised` options (`train`) and, optionally, word vectors
trained first (`pretrain`: `fasttext skipgram|cbow` options, plus a `corpus` of further texts relative
to the repository root), given to `supervised` as -pretrainedVectors with the supervised `dim`.
`-thread` and `-verbose` are set by the fastText learner, not here. The size budget
(training/size_budget.py) decides how a model is quantized, not the preset.

`default` is the bundled Debian model's; `auto_preset` sizes one from the data (`--preset auto`,
the default for your own data).
"""

import copy

from training.errors import TrainingError

PRESETS: dict[str, dict] = {
    # The Debian model's (make setup). The autotune grid's winner (dim 100, epoch 30, lr 0.1, skip-gram
    # vectors first) scored 0.829 / 0.605 on validation in 6 minutes of a 9-minute setup; dim 50, 10
    # epochs at lr 0.2 score 0.802 / 0.568 (well above the 0.765 / 0.53 it must keep) in 78 s, within
    # 10 MiB, calibrated to a top-5 ECE of 0.022 (training/REPORT.md).
    "default": {
        "description": "the bundled Debian model's (see training/REPORT.md)",
        "train": {"loss": "ova", "dim": 50, "epoch": 10, "lr": 0.2, "wordNgrams": 2, "bucket": 2000000},
    },
}

# lr x epoch x examples, the amount of learning, kept within these for `auto` (training/REPORT.md):
# 75,000 measured best or within a few tenths of the best from 3,000 to 23,000 texts; past
# LARGE examples plain fastText's 5 epochs at lr 0.2 (200,000 on 200,000 PyPI summaries) is the
# reference the large preset keeps to.
LR_BUDGET = 75_000
# From here the large preset: on 38,000 PyPI summaries it scored a test P@1 of 0.234 in 43 s, where
# the small one (30 epochs at lr 0.1, 32,768 buckets) scored 0.206 in 378 s (training/REPORT.md).
LARGE = 20_000
LARGE_LR_BUDGET = 200_000
LR_RANGE = (0.05, 0.5)


def get_preset(name: str) -> dict:
    """A deep copy of preset `name` (so callers may override its parameters)."""
    try:
        return copy.deepcopy(PRESETS[name])
    except KeyError:
        raise TrainingError(f"unknown preset {name!r}; choose one of: auto, {', '.join(sorted(PRESETS))}") from None


def auto_preset(examples: int, tags: int, tokens: int, words: int, bigrams: int) -> tuple[dict, list[str]]:
    """A preset sized for the data, and the reasons for each choice.

    Small data (under LARGE examples): the hash table holds about a row for every
    four distinct word pairs, vectors are shorter for smaller data, word vectors are pretrained only
    when there is enough text for them, and lr x epoch x examples stays near LR_BUDGET (3,000 Debian
    descriptions: P@1 0.653 where `default` scores 0.554, in 12 s instead of 227 s). Larger data
    trains as plain fastText does well on it (200,000 PyPI summaries, training/REPORT.md): 5 epochs,
    dim 50, 2M buckets (the size budget keeps the rows that matter), no pretraining, lr from
    LARGE_LR_BUDGET, at most 0.2 (0.5 diverged to NaN there).
    """
    if examples >= LARGE:
        epoch, dim, bucket = 5, 50, 2_000_000
        lr = round(min(0.2, max(LR_RANGE[0], LARGE_LR_BUDGET / (epoch * examples))), 3)
        budget = LARGE_LR_BUDGET
    else:
        bucket = min(1 << 21, max(1 << 14, 1 << max(0, bigrams // 4 - 1).bit_length()))
        dim = 25 if examples < 10_000 else 50
        epoch = 50 if examples < 10_000 else 30
        lr = round(min(LR_RANGE[1], max(0.1, LR_BUDGET / (epoch * max(1, examples)))), 2)
        budget = LR_BUDGET
    train = {"loss": "ova", "dim": dim, "epoch": epoch, "lr": lr, "wordNgrams": 2, "bucket": bucket, "minCount": 1}
    preset = {"description": "sized from the data (training/presets.py auto_preset)", "train": train}
    reasons = [
        f"dim {dim}, epoch {epoch}, bucket {bucket:,}: {examples:,} training examples, {bigrams:,} distinct word pairs",
        f"lr {lr}: lr x epoch x examples = {lr * epoch * examples:,.0f} (aimed at {budget:,})",
    ]
    if LARGE > examples and tokens >= 1_000_000:
        preset["pretrain"] = {"model": "skipgram", "epoch": 5, "minCount": 3, "minn": 0, "maxn": 0}
        reasons.append(f"skipgram pretraining: {tokens:,} training tokens (at least 1M)")
    else:
        reasons.append(f"no pretraining ({tokens:,} training tokens)")
    reasons.append(f"{tags} tags, loss ova: one independent probability per hashtag")
    return preset, reasons
