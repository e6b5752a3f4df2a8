"""Human-readable outputs of a training run: the Markdown report and the precision/recall figure."""

from pathlib import Path

from training.size_budget import fasttext_args


def _pct(x: float) -> str:
    return f"{x:.3f}"


def write_pr_figure(path: Path, curve: list[dict], title: str) -> None:
    """Precision, recall and labels per text versus the probability threshold (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thresholds = [row["threshold"] for row in curve]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(thresholds, [row["precision"] for row in curve], label="precision")
    ax1.plot(thresholds, [row["recall"] for row in curve], label="recall")
    ax1.set_xlabel("probability threshold (labels in the top 50 with p >= threshold)")
    ax1.set_ylabel("micro average over validation")
    ax1.set_ylim(0, 1.02)
    ax1.grid(alpha=0.3)
    ax1.legend()
    ax1b = ax1.twinx()
    ax1b.plot(thresholds, [row["labels_per_text"] for row in curve], color="grey", linestyle=":",
              label="hashtags per text")
    ax1b.set_ylabel("hashtags per text (dotted)")
    ax2.plot([row["recall"] for row in curve], [row["precision"] for row in curve], marker=".")
    ax2.set_xlabel("recall")
    ax2.set_ylabel("precision")
    ax2.set_xlim(0, 1.02)
    ax2.set_ylim(0, 1.02)
    ax2.grid(alpha=0.3)
    ax2.set_title("precision vs recall over thresholds")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def calibration_lines(calibration: dict | None) -> list[str]:
    """The reliability table of metrics.calibration, when the run measured it."""
    if not calibration:
        return []
    lines = [
        "",
        "## Calibration",
        "",
        f"Top-{calibration['k']} expected calibration error: **{calibration['ece']:.3f}** over "
        f"{calibration['pairs']:,} (text, hashtag) pairs: per bin of predicted probability, how often "
        "the hashtag is one of the text's tags.",
        "",
        "| probability | pairs | mean probability | fraction correct |",
        "|---|---|---|---|",
    ]
    for row in calibration["bins"]:
        mean_p, accuracy = ("-", "-") if not row["count"] else (_pct(row["mean_p"]), _pct(row["accuracy"]))
        lines.append(f"| {row['low']:.1f}-{row['high']:.1f} | {row['count']:,} | {mean_p} | {accuracy} |")
    return lines


def data_lines(notes: list[str]) -> list[str]:
    """What was read, dropped and split, as training printed it."""
    dropped = sum(note.startswith("dropped") for note in notes)
    return ["", "## Dropped from the data", "",
            "Nothing was dropped." if not dropped else f"{dropped} rule{'s' if dropped > 1 else ''} dropped "
            "rows or tags; all that training said about the data:", ""] + [f"- {note}" for note in notes]


def _options(options: dict) -> str:
    return f"`{' '.join(fasttext_args(options))}`"


def write_report(path: Path, metrics: dict, top_labels: list[dict], top_labels_t50: list[dict],
                 curve: list[dict], figure_name: str) -> None:
    """The Markdown report: headline metrics, quantization cost, per-hashtag table, thresholds."""
    m = metrics
    final, before = m["validation"], m.get("validation_unquantized")
    lines = [
        f"# Model report: {m['winner']}",
        "",
        f"- model: `{m['model']}`, {m['model_bytes']:,} bytes ({m['model_bytes'] / 2**20:.2f} MiB, budget "
        f"{m['size_budget_bytes'] / 2**20:.0f} MiB), {m['labels']} labels, quantized: "
        f"{'yes, ' + _options(m['quantize_params']) if m['quantized'] else 'no'}",
        f"- candidates fitted on {m['train_examples']:,} examples and scored on {m['valid_examples']:,} validation "
        f"examples; the winner {'refitted on all of them' if m['refit_on_all_rows'] else 'not refitted'}",
        f"- training wall time: {m['training_seconds']:.1f} s",
        f"- calibration: the output matrix scaled by {m['temperature']:.3f}, fitted on validation"
        + (f", and by {m['temperature_after_quantization']:.3f} more, fitted again after quantization"
           if m["quantized"] else ""),
        "",
        "## Candidates",
        "",
        f"Criterion: {m['criterion']}. {m['why']}.",
        "",
        "| candidate | P@1 | R@5 | top-5 ECE (uncalibrated) | temperature | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for c in m["candidates"]:
        name = f"**{c['name']}**" if c["name"] == m["winner"] else c["name"]
        lines.append(f"| {name} | {_pct(c['p_at_1'])} | {_pct(c['r_at_5'])} | {c['ece_top5']:.3f} "
                     f"({c['ece_top5_uncalibrated']:.3f}) | "
                     f"{c['temperature']:.3f} | {c['seconds']:.1f} |")
    b = m.get("baseline")
    if b:
        lines.append(f"| {b['name']} | {_pct(b['p_at_1'])} | {_pct(b['r_at_5'])} | {b['ece_top5']:.3f} | - | "
                     f"{b['seconds']:.1f} |")
    for note in m.get("learner_notes", []):
        lines += ["", note]
    lines += [
        "",
        "## Validation metrics",
        "",
        "fastText's definitions: P@k = correct in top k / (k x examples); R@k = correct in top k / gold labels.",
        "",
        "| model | P@1 | R@1 | P@5 | R@5 | bytes |",
        "|---|---|---|---|---|---|",
    ]
    if before is not None:
        lines.append(f"| before quantization | {_pct(before['p_at_1'])} | {_pct(before['r_at_1'])} | "
                     f"{_pct(before['p_at_5'])} | {_pct(before['r_at_5'])} | {m['unquantized_bytes']:,} |")
    lines.append(f"| **shipped model** | **{_pct(final['p_at_1'])}** | {_pct(final['r_at_1'])} | "
                 f"{_pct(final['p_at_5'])} | **{_pct(final['r_at_5'])}** | {m['model_bytes']:,} |")
    if before is not None and m["quantized"]:
        lines += [
            "",
            f"What the size budget cost: P@1 {final['p_at_1'] - before['p_at_1']:+.3f}, "
            f"R@5 {final['r_at_5'] - before['r_at_5']:+.3f}, for a model "
            f"{m['unquantized_bytes'] / m['model_bytes']:.1f}x smaller. Settings tried:",
            "",
        ]
        lines += [f"- {_options(t['options'])}: {t['bytes']:,} bytes, P@1 {_pct(t['p_at_1'])}, "
                  f"R@5 {_pct(t['r_at_5'])}" for t in m["quantize_tried"]]
    ft = m.get("fasttext_test")
    if ft:
        lines += ["", f"Cross-check with `fasttext test` (it skips gold labels unknown to the model): "
                      f"P@1 {ft['p_at_1']:.3f}, R@5 {ft['r_at_5']:.3f} (N={ft['n']})."]
    lines += calibration_lines(m.get("calibration"))
    lines += data_lines(m.get("data_notes", []))
    lines += [
        "",
        f"## The {len(top_labels)} most frequent hashtags",
        "",
        "A hashtag counts as recommended when it is in the top 5 (the endpoint's default k), "
        "at threshold 0 and at threshold 0.5.",
        "",
        "| hashtag | valid support | precision (top 5) | recall (top 5) | precision (p>=0.5) | recall (p>=0.5) |",
        "|---|---|---|---|---|---|",
    ]
    for row, row50 in zip(top_labels, top_labels_t50):
        lines.append(f"| #{row['label']} | {row['support']} | {_pct(row['precision'])} | {_pct(row['recall'])} | "
                     f"{_pct(row50['precision'])} | {_pct(row50['recall'])} |")
    lines += [
        "",
        "## Precision and recall versus threshold",
        "",
        f"![precision/recall vs threshold]({figure_name})",
        "",
        "| threshold | precision | recall | hashtags per text |",
        "|---|---|---|---|",
    ]
    for row in curve:
        if round(row["threshold"] * 100) % 10 == 0 or row["threshold"] in (0.05, 0.15):
            lines.append(f"| {row['threshold']:.2f} | {_pct(row['precision'])} | {_pct(row['recall'])} | "
                         f"{row['labels_per_text']:.2f} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
