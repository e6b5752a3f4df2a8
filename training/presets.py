"""Named training presets: fastText `supervised` parameters and, optionally, `quantize` parameters.

`pretrain` (optional) holds `fasttext skipgram|cbow` options for word vectors trained on
the training split's texts, plus those of the dataset file `corpus` (optional, relative to
the repository root), and passed to `supervised` as -pretrainedVectors (`dim` comes from `train`);
`train` holds `fasttext supervised` options (without the leading dash); `quantize`
holds `fasttext quantize` options (booleans are flags), plus `refit_norms`
(training/quantization.py), or None to ship the model unquantized. `-thread` and `-verbose` are set by training/train.py, not here.

`default` is the winner of `python -m training.autotune` within the 10 MiB size
budget, copied here by hand (see training/REPORT.md for the search and its table).
"""

import copy

PRESETS: dict[str, dict] = {
    # The parameters the project started from, kept for reference (unquantized, ~85 MB).
    "seed": {
        "description": "the seed's parameters, unquantized (reference only: far over the size budget)",
        "train": {"lr": 1.0, "epoch": 20, "dim": 300, "wordNgrams": 2, "neg": 10, "bucket": 10000},
        "quantize": None,
    },
    # The autotune grid's winner within 10 MiB (ova-d100-e30-lr0.1-c150k); see training/REPORT.md.
    # At lr 0.25 the unquantized model is as good, but quantization then cost 0.7-2.1 points
    # of P@1 in the grid; with these parameters it costs ~0.1-0.2 point.
    "default": {
        "description": "best configuration found within the 10 MiB budget (see training/REPORT.md)",
        # Word vectors trained first on the training split's cleaned texts (`fasttext skipgram`,
        # with the supervised dim), then given to `supervised` as -pretrainedVectors: +1.4-1.6
        # points of R@5 after quantization (training/REPORT.md). -minn 0 -maxn 0: the supervised
        # model only reads word vectors, so subword n-grams would cost 7x the time for nothing.
        # `corpus`: the other bookworm main descriptions, untagged packages too, none from the
        # validation split (data/README.md): about twice the text of the training split alone.
        "pretrain": {"model": "skipgram", "epoch": 5, "minCount": 3, "minn": 0, "maxn": 0,
                     "corpus": "data/pretrain.tsv.gz"},
        "train": {"loss": "ova", "dim": 100, "epoch": 30, "lr": 0.1, "wordNgrams": 2, "bucket": 2000000},
        # 88,000 rows kept (by norm, as fastText does: the rows cut cost nothing measurable),
        # each dimension quantized on its own (-dsub 1), norms apart (-qnorm), and the norm
        # codebook refitted from the unquantized rows (training/quantization.py): fastText's own
        # gives `</s>` and the most frequent words one shared, far too small norm (-0.6 to -1
        # point of P@1). No -retrain: it brought nothing here and would change the rows the
        # refit reads (training/REPORT.md).
        "quantize": {"cutoff": 88000, "dsub": 1, "qnorm": True, "refit_norms": True},
    },
}


def get_preset(name: str) -> dict:
    """A deep copy of preset `name` (so callers may override its parameters)."""
    try:
        return copy.deepcopy(PRESETS[name])
    except KeyError:
        raise SystemExit(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}") from None


LR_BUDGET = 75_000  # lr x epoch x examples for --preset auto (training/REPORT.md)


def auto_preset(examples: int, tags: int, tokens: int, words: int, bigrams: int) -> tuple[dict, list[str]]:
    """A preset sized for the data, and the reasons for each choice, for `--preset auto`.

    The `default` preset is sized for 30,000 Debian texts and 2 million hashed n-gram rows:
    on a few thousand posts it spends most of its time quantizing rows no text uses. Here
    the hash table holds about a row for every four distinct word pairs, vectors are shorter
    for smaller data, and word vectors are pretrained only when there is enough text for them.
    The learning rate falls as the data grows, so that lr x epoch x examples stays near
    75,000 (between 0.1 and 0.5): measured on 3,000 to 23,000 texts, it was the best or within
    a few tenths of the best each time. Measured on 3,000 Debian descriptions with 64 tags
    (training/REPORT.md): P@1 0.653 where `default` scores 0.554, in 12 s instead of 227 s, at
    about half the size.
    """
    bucket = min(1 << 21, max(1 << 14, 1 << max(0, bigrams // 4 - 1).bit_length()))
    dim = 25 if examples < 10_000 else 50 if examples < 50_000 else 100
    epoch = 50 if examples < 10_000 else 30
    lr = round(min(0.5, max(0.1, LR_BUDGET / (epoch * max(1, examples)))), 2)
    train = {"loss": "ova", "dim": dim, "epoch": epoch, "lr": lr, "wordNgrams": 2, "bucket": bucket, "minCount": 1}
    rows = bucket + words  # the input matrix: one row per word and per hashed word pair
    unquantized_mib = rows * dim * 4 / 2**20
    preset = {"description": "sized from the data (training/presets.py auto_preset)", "train": train,
              "quantize": None}
    reasons = [
        f"bucket {bucket:,}: a power of two near a quarter of the {bigrams:,} distinct word pairs (2^14 to 2^21)",
        f"dim {dim}, epoch {epoch}: {examples:,} training examples",
        f"lr {lr}: lr x epoch x examples near {LR_BUDGET:,}, between 0.1 and 0.5",
    ]
    if tokens >= 1_000_000:
        preset["pretrain"] = {"model": "skipgram", "epoch": 5, "minCount": 3, "minn": 0, "maxn": 0}
        reasons.append(f"skipgram pretraining: {tokens:,} training tokens (at least 1M)")
    else:
        reasons.append(f"no pretraining: {tokens:,} training tokens (under 1M: too few for word vectors)")
    # No quantize options of its own: the size budget (training/size_budget.py) quantizes a model
    # over it with as many rows as fit. A fixed 88,000-row cutoff here cost 9 points of P@1 on
    # 600,000 PyPI summaries (issue 15) and 1 point on 200,000 (training/REPORT.md).
    reasons.append(f"about {unquantized_mib:.1f} MiB dense: the size budget decides whether to quantize")
    reasons.append(f"{tags} tags, loss ova: one independent probability per hashtag")
    return preset, reasons
