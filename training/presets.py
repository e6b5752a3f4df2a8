"""Named training presets: fastText `supervised` parameters and, optionally, `quantize` parameters.

`pretrain` (optional) holds `fasttext skipgram|cbow` options for word vectors trained on
the training split's texts, plus those of the dataset file `corpus` (optional, relative to
the repository root), and passed to `supervised` as -pretrainedVectors (`dim` comes from `train`);
`train` holds `fasttext supervised` options (without the leading dash); `quantize`
holds `fasttext quantize` options (booleans are flags), or None to ship the model
unquantized. `-thread` and `-verbose` are set by training/train.py, not here.

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
        # -retrain re-reads -epoch and -lr from the quantize command line (fastText's defaults: 5, 0.1).
        "quantize": {"cutoff": 150000, "retrain": True, "qnorm": True, "epoch": 5, "lr": 0.05},
    },
}


def get_preset(name: str) -> dict:
    """A deep copy of preset `name` (so callers may override its parameters)."""
    try:
        return copy.deepcopy(PRESETS[name])
    except KeyError:
        raise SystemExit(f"unknown preset {name!r}; choose one of: {', '.join(sorted(PRESETS))}") from None
