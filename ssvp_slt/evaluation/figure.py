"""The comparison as a PNG (matplotlib, Agg backend: no display needed).

Panels: the metrics where higher is better (BLEU-1..4, ROUGE-L, METEOR, chrF), the error rates (WER,
CER), and, when checkpoints were decoded in the run, clips per second. Bars are the corpus scores,
whiskers sacreBLEU's 95% bootstrap interval (mean ± half-width), and the mark over each non-baseline
bar the verdict against the baseline: "+" better, "−" worse, "n.s." no significant difference.
"""

from pathlib import Path
from typing import Dict, List

from .metrics import LOWER_IS_BETTER, METRIC_KEYS, METRIC_NAMES
from .significance import BETTER, WORSE

MARKS = {BETTER: "+", WORSE: "\u2212"}


def _bars(ax, comparison: Dict, keys: List[str], names: List[str]) -> None:
    import numpy as np

    n = len(names)
    width = 0.8 / n
    x = np.arange(len(keys))
    top = 0.0
    for i, name in enumerate(names):
        rows = [comparison["metrics"][k]["systems"][i] for k in keys]
        scores = np.array([r["score"] for r in rows])
        low = np.array([r["bootstrap_mean"] - r["ci95_half_width"] for r in rows])
        high = np.array([r["bootstrap_mean"] + r["ci95_half_width"] for r in rows])
        err = np.vstack([np.clip(scores - low, 0, None), np.clip(high - scores, 0, None)])
        pos = x - 0.4 + width * (i + 0.5)
        ax.bar(pos, scores, width, yerr=err, capsize=2, label=name + (" (baseline)" if i == 0 else ""), color=f"C{i}")
        top = max(top, float(high.max()))
        if i:
            for p, r, h in zip(pos, rows, high):
                mark = MARKS.get(r["verdict"], "n.s.")
                ax.text(p, h + 1, mark, ha="center", va="bottom", fontsize=7 if mark == "n.s." else 10)
    ax.set_xticks(x)
    ax.set_xticklabels([METRIC_NAMES[k] for k in keys])
    ax.set_ylim(0, max(10.0, top * 1.15 + 3))
    ax.grid(axis="y", alpha=0.3)


def comparison_figure(comparison: Dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s["name"] for s in comparison["systems"]]
    shown = [k for k in METRIC_KEYS if comparison["metrics"][k]["systems"] is not None]
    higher = [k for k in shown if k not in LOWER_IS_BETTER]
    lower = [k for k in shown if k in LOWER_IS_BETTER]
    speeds = [s for s in comparison["systems"] if s["speed"]]
    ratios = [len(higher), max(len(lower), 1)] + ([1.3] if speeds else [])
    fig, axes = plt.subplots(1, len(ratios), figsize=(4 + 1.1 * sum(ratios), 4.8), gridspec_kw={"width_ratios": ratios})
    _bars(axes[0], comparison, higher, names)
    axes[0].set_title("higher is better")
    axes[0].set_ylabel("score (x100; WER, CER in %)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(len(names), 4), fontsize=8, bbox_to_anchor=(0.5, 0.945), frameon=False)
    if lower:
        _bars(axes[1], comparison, lower, names)
        axes[1].set_title("lower is better")
    if speeds:
        ax = axes[-1]
        values = [s["speed"]["clips_per_second"] for s in speeds]
        colors = [f"C{names.index(s['name'])}" for s in speeds]
        ax.bar(range(len(speeds)), values, color=colors)
        for i, s in enumerate(speeds):
            ax.text(i, values[i], f"RTF {s['speed']['real_time_factor']:.3f}\n{s['speed']['parameters'] / 1e6:.1f}M par.",
                    ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(speeds)))
        ax.set_xticklabels([s["name"] for s in speeds], fontsize=8)
        ax.set_ylim(0, max(values) * 1.35)
        ax.set_title("clips / s")
        ax.grid(axis="y", alpha=0.3)
    st = comparison["statistics"]
    title = comparison.get("title") or "comparison"
    fig.suptitle(f"{title} ({comparison['num_samples']} clips)", fontsize=11)
    notes = (f"whiskers: 95% bootstrap CI ({st['samples']} resamples, seed {st['seed']}); vs baseline {names[0]}: "
             f"+ better, \u2212 worse, n.s. not significant at p < {st['alpha']} ({st['test'].split(' (')[0]})")
    if speeds:
        notes += f"\nspeed {comparison['speed_note']}"
    fig.text(0.01, 0.01, notes, fontsize=7, va="bottom")
    fig.tight_layout(rect=(0, 0.08 if speeds else 0.05, 1, 0.9))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
