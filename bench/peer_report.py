"""Tables, the docs/benchmarks.md section and the plot of bench/peer_bench.py."""

from __future__ import annotations

import statistics
import time
from importlib import metadata
from pathlib import Path

from bench_common import MIB, machine, shown, write_doc_section

BEGIN, END = "<!-- peer_bench:begin -->", "<!-- peer_bench:end -->"
PACKAGES = ["torch", "transformers", "FlagEmbedding", "sentence-transformers", "onnxruntime",
            "onnx", "openvino", "nncf", "ctranslate2"]


def versions() -> str:
    found = []
    for package in PACKAGES:
        try:
            found.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} not installed")
    return ", ".join(found)


def distribution(lengths: list[int], max_length: int) -> str:
    ordered = sorted(lengths)
    tenth = ordered[len(ordered) // 10]
    ninetieth = ordered[min(len(ordered) - 1, len(ordered) * 9 // 10)]
    cut = sum(n >= max_length for n in lengths) / len(lengths)
    return (f"min {ordered[0]}, p10 {tenth}, median {statistics.median(ordered):.0f}, "
            f"mean {statistics.mean(ordered):.0f}, p90 {ninetieth}, max {ordered[-1]}; "
            f"{100 * cut:.0f}% cut at {max_length}")


def progress_line(row) -> str:
    if row.skipped:
        return f"{row.system}: skipped: {row.skipped}"
    return (f"{row.system}: {row.seconds:.2f} s timed, peak RSS {row.peak_rss / MIB:.0f} MiB"
            + (f" [{row.detail}]" if row.detail else ""))


def number(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def part_table(part: dict, peaks: dict) -> list[str]:
    unit = "texts" if part["kind"] == "embed" else "pairs"
    lines = [f"| system | peak dtype | {unit}/s | tokens/s | GFLOP/s | of GEMM peak | peak RSS | "
             "max \\|Δscore\\| | top-1 agreement | Kendall τ |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in part["rows"]:
        if row.skipped:
            continue
        m = row.metrics
        dtype = row.dtype if row.dtype in peaks else f"{row.dtype} (bf16 peak)"
        share = "–" if m.get("of_peak") is None else f"{100 * m['of_peak']:.1f}%"
        diff = "–" if "max_diff" not in m else f"{m['max_diff']:.2g}"
        top1 = "–" if "top1" not in m else f"{100 * m['top1']:.0f}%"
        tau = "–" if "tau" not in m else f"{m['tau']:.3f}"
        lines.append(f"| {row.label} | {dtype} | {number(m['items_per_s'], 2)} | "
                     f"{number(m['tokens_per_s'], 0)} | {number(m['gflops'], 0)} | {share} | "
                     f"{row.peak_rss / MIB:,.0f} MiB | {diff} | {top1} | {tau} |")
    return lines


def doc_lines(command: str, args, peaks: dict, gemm: list, parts: list, plot: str) -> list[str]:
    lines = ["## Peer benchmark: the engine against the alternatives", "",
             f"Measured {time.strftime('%Y-%m-%d')} on {machine()} by `{command}`: "
             f"{args.threads} threads for every system, each in a fresh process, batches of "
             f"{args.batch_size}, max_length {args.max_length}. Random-weight checkpoints of "
             "published sizes (tools/export.py --tiny --shape; small tokenizer), so scores carry "
             f"no meaning, only their agreement does. Versions: {versions()}.", "",
             "GEMM peak, 2048³, best of 5, same thread count, its own process:", "",
             "| dtype | path | GFLOP/s |", "|---|---|---|"]
    for entry in gemm:
        value = number(entry["gflops"], 0) if entry["gflops"] else entry.get("error", "–")
        lines.append(f"| {entry['dtype']} | {entry['label']} | {value} |")
    lines += ["", "The fastest per dtype is that dtype's peak: "
              + ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in peaks.items()) + "."]
    for part in parts:
        lines += part_section(part, peaks, args)
    if parts:
        lines += ["", f"![pairs/s and fraction of GEMM peak per system]({plot})", ""]
    lines += notes()
    return lines


def part_section(part: dict, peaks: dict, args) -> list[str]:
    arch = part["arch"]
    unit = "texts" if part["kind"] == "embed" else "pairs"
    sizes = ", ".join(f"{k} {v}" for k, v in arch.items())
    lines = ["", f"### {part['name']}, {part['shape']} shape ({sizes})", "",
             f"{part['queries']} queries × {args.per_query} passages of {args.passage_words[0]} "
             f"to {args.passage_words[1]} words: {part['items']} {unit}, real tokens "
             f"{distribution(part['lengths'], args.max_length)}; "
             f"{part['gflop_per_item']:.1f} GFLOP per {unit[:-1]} on average.", ""]
    lines += part_table(part, peaks)
    reference = part["rows"][0].label if part["rows"] else "none"
    lines += ["", f"Scores compared with {reference}"
              + (" (pair score: dot product of the dense vectors)" if part["kind"] == "embed"
                 else "") + "."]
    skipped = [row for row in part["rows"] if row.skipped]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(f"{row.label}: {row.skipped}" for row in skipped)
                  + "."]
    details = [f"{row.label}: {row.detail}" for row in part["rows"] if row.detail and
               not row.skipped]
    if details:
        lines += ["", "Notes: " + "; ".join(details) + "."]
    commands = [row.command for row in part["rows"] if row.command]
    if commands:
        lines += ["", "Engine commands (each also run on an empty input, whose seconds are "
                  "subtracted):", ""] + [f"    {shown(c)}" for c in commands]
    return lines


def notes() -> list[str]:
    return [
        "Every peer scores the items sorted by length, longest first, in batches padded to the "
        "longest in the batch, with the checkpoint's HF tokenizer, after one warm-up batch, "
        "timed from texts to scores (tokenization included, model loading not). The engine "
        "batches by itself (sorted by length, cut where the length drops, padding to a "
        "multiple of 8); its time is its summary's seconds less its warm-up pass "
        "(memory.warmup: the longest shape in a full batch; the summary's warmup_seconds), "
        "minus the same for the command on an empty input, so loading and warm-up do not "
        "count. FlagEmbedding's compute_score and encode run their longest batch once more "
        "first, to probe the batch size; that forward is inside the timed call, as users pay "
        "it, and the notes give its share.", "",
        "FLOPs per sequence of L real tokens, BERT-like encoder: layers × (2·L·(4H² + 2·H·I) + "
        "4·L²·H) (the four projections, the two feed-forward matrices, QKᵀ and PV; softmax, "
        "norms and the head left out); Gemma: layers × (2·L·(2·H·Hq + 2·H·Hkv + 3·H·I) + "
        "4·L²·Hq), Hq and Hkv the query and key/value widths. GFLOP/s counts real tokens only, so "
        "padding lowers it. A row's fraction is of its dtype's GEMM peak; int8 rows are against "
        "the int8 peak (torch._int_mm), or the bf16 one where that is higher or was not "
        "measured. Peak RSS is "
        "the worker's VmHWM at the end (the engine's summary peak_resident); conversions (ONNX "
        "export, optimization, quantization, OpenVINO IR, CTranslate2) run in a process of "
        "their own first. Top-1 agreement: share of queries whose best passage is the "
        "reference's; Kendall τ: τ-b of each query's passage order against the reference's, "
        "averaged over queries."]


def write(doc: Path, lines: list[str]) -> None:
    write_doc_section(doc, BEGIN, END, lines)


def plot(parts: list, path: Path) -> None:
    """Two panels per part: items/s, and the fraction of the row dtype's GEMM peak."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown_rows = [[row for row in part["rows"] if not row.skipped][::-1] for part in parts]
    heights = [max(len(rows), 1) + 1.5 for rows in shown_rows]
    figure, axes = plt.subplots(len(parts), 2, squeeze=False, figsize=(14, 0.4 * sum(heights)),
                                gridspec_kw={"height_ratios": heights})
    for (left, right), part, rows in zip(axes, parts, shown_rows):
        labels = [row.label for row in rows]
        colours = ["tab:blue" if row.system.startswith("engine") else "tab:gray" for row in rows]
        unit = "texts" if part["kind"] == "embed" else "pairs"
        panels = ((left, [row.metrics["items_per_s"] for row in rows], f"{unit}/s",
                   f"{part['name']} ({part['shape']} shape): {unit}/s", "{:.3g}"),
                  (right, [100 * (row.metrics.get("of_peak") or 0) for row in rows],
                   "% of the GEMM peak of the row's dtype", "achieved GFLOP/s / GEMM peak",
                   "{:.1f}%"))
        for axis, values, xlabel, title, fmt in panels:
            bars = axis.barh(labels, values, color=colours)
            axis.bar_label(bars, [fmt.format(v) for v in values], padding=3, fontsize=8)
            axis.set_xlabel(xlabel)
            axis.set_title(title)
            axis.margins(x=0.15)
        right.set_yticks(range(len(labels)), [""] * len(labels))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
