"""The report's page: ``report.html`` (one self-contained file) and ``report.json`` from a :class:`~modomodo.report.ReportData`."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from modomodo.mixture.records import RUN_ID
from modomodo.mixture.simplex import Mixture, weight_column
from modomodo.report import SCORE_LABELS, ReportData, ReportError, summary, write_json


def build_report(data: ReportData, out_dir: Path) -> Path:
    """Write ``report.html`` and ``report.json`` into ``out_dir``; returns the HTML path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    missing = [str(p.path) for p in data.plots if not p.path.is_file()]
    if missing:
        raise ReportError(f"plots not found: {missing}")
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    write_json(out_dir / "report.json", _json_document(data, generated))
    page = out_dir / "report.html"
    page.write_text(_html_document(data, generated))
    return page


def _json_document(data: ReportData, generated: str) -> dict[str, object]:
    return {
        "experiment": data.experiment,
        "generated": generated,
        "summary": summary(data),
        "comparison": [
            {"label": c.label, "run_id": c.run_id, "mixture": c.mixture, "scores": c.scores}
            for c in data.contenders
        ],
        "pilots": data.pilots.frame.to_dict(orient="records") if data.pilots is not None else [],
        "surrogate": data.surrogate,
        "proposals": data.proposals,
        "pass_rates": data.pass_rates,
        "plots": [{"title": p.title, "caption": p.caption, "file": p.path.name} for p in data.plots],
        "settings": data.settings,
        "versions": data.versions,
    }


_CSS = """
:root { --ink: #1f2430; --muted: #5b6475; --line: #d9dde5; --accent: #2a62c9; --good: #1d7f4e; --bad: #b23b3b; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 48px; }
header { margin-bottom: 8px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.2rem; margin: 0 0 12px; }
.meta { color: var(--muted); font-size: 0.9rem; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin-top: 18px; }
.headline { font-size: 1.05rem; border-left: 4px solid var(--accent); }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 0.9rem; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #eef1f6; position: sticky; top: 0; }
tr.total td { font-weight: 600; border-top: 2px solid var(--ink); }
tr.best td { background: #eaf6ef; }
.pos { color: var(--good); } .neg { color: var(--bad); }
.mixture { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.82rem; }
td:has(> .mixture) { text-align: left; white-space: normal; min-width: 9rem; }
figure { margin: 16px 0 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
figcaption { color: var(--muted); font-size: 0.88rem; margin-top: 6px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; font-size: 0.9rem; }
dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
.note { color: var(--muted); font-size: 0.88rem; }
"""


_SELF_CHECK = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.every(function (img) { return img.complete && img.naturalWidth > 0; });
  var scrollers = Array.prototype.slice.call(document.querySelectorAll(".scroll"));
  var clipped = scrollers.filter(function (el) { return el.scrollWidth > el.clientWidth + 1; }).length;
  var body = document.body;
  body.setAttribute("data-plots", String(images.length));
  body.setAttribute("data-plots-loaded", String(loaded));
  body.setAttribute("data-overflow", String(document.documentElement.scrollWidth > window.innerWidth));
  body.setAttribute("data-clipped-tables", String(clipped));
  body.setAttribute("data-height", String(document.documentElement.scrollHeight));
});
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _delta(value: float) -> str:
    cls = "pos" if value > 0 else "neg" if value < 0 else ""
    return f'<span class="{cls}">{value:+.3f}</span>'


def _mixture_text(mixture: Mapping[str, float] | None) -> str:
    return "–" if not mixture else _e(Mixture(mixture, normalize=True).label(2).replace(",", ", "))


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f'<div class="scroll"><table><thead><tr>{cells}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _row(cells: Sequence[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<tr{attr}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _headline(data: ReportData) -> str:
    facts = summary(data)
    chosen = data.contenders[-1]
    label = SCORE_LABELS.get(data.target, data.target)
    text = (
        f"The chosen mixture <b>{_mixture_text(chosen.mixture)}</b> reaches {label} "
        f"<b>{_num(chosen.scores[data.target])}</b>"
    )
    against = [
        f"{_delta(facts[name]['delta'])} against {name} ({_num(facts[name]['scores'][data.target])})"
        for name in ("uniform", "base")
        if name in facts
    ]
    if against:
        text += ": " + " and ".join(against)
    text += "."
    if data.seed_noise.std is not None:
        text += f" One run&rsquo;s seed noise: &plusmn;{_num(data.seed_noise.std)} ({_e(data.seed_noise.source)})."
    if "uniform" in facts:
        verdict = facts["uniform"]["verdict"]
        text += f" In words: {_e(verdict[0].upper() + verdict[1:])}."
    if data.decision:
        text += f" Pick: <b>{_e(data.decision['path'])}</b>, because {_e(data.decision['reason'])}."
    return f'<section class="headline"><p>{text}</p></section>'


def _comparison(data: ReportData) -> str:
    head = ["", *(c.label for c in data.contenders)]
    rows = [
        _row(
            [
                "mixture",
                *(f'<span class="mixture">{_mixture_text(c.mixture)}</span>' for c in data.contenders),
            ]
        )
    ]
    for split in ("in", "out"):
        for benchmark in sorted(b for b, s in data.splits.items() if s == split):
            column = f"{benchmark}_score"
            rows.append(
                _row([f"{_e(benchmark)} ({split})", *(_num(c.scores.get(column)) for c in data.contenders)])
            )
    noise = data.seed_noise.std
    for column, label in SCORE_LABELS.items():
        cells = [_num(c.scores.get(column)) for c in data.contenders]
        if column == data.target and noise is not None:
            # the base is one fixed model; every other column is one RL run, as noisy as its seed
            cells = [
                cell if c.mixture is None else f"{cell} &plusmn; {_num(noise)}"
                for c, cell in zip(data.contenders, cells, strict=True)
            ]
        rows.append(_row([label, *cells], "total"))
    note = (
        '<p class="note">Per-benchmark scores: mean IoU on box benchmarks, exact-match accuracy on the others; '
        "In- and Out-Score are sample-count-weighted means over the in- and out-of-domain benchmarks.</p>"
    )
    return f"<section><h2>Base, uniform, best pilot and the chosen mixture</h2>{_table(head, rows)}{note}</section>"


def _pilots(data: ReportData) -> str:
    if data.pilots is None or not len(data.pilots):
        return ""
    frame = data.pilots.frame
    order = frame.sort_values(data.target, ascending=False).index
    best = frame[data.target].idxmax()
    has_kind = "kind" in frame.columns
    head = ["run", *(["kind"] if has_kind else []), *(f"w {d}" for d in data.domains), *SCORE_LABELS.values()]
    rows = []
    for i in order:
        record = frame.loc[i]
        cells = [_e(record[RUN_ID]), *([_e(record["kind"])] if has_kind else [])]
        cells += [_num(float(record[weight_column(d)]), 2) for d in data.domains]
        cells += [_num(float(record[c])) if c in frame.columns else "–" for c in SCORE_LABELS]
        rows.append(_row(cells, "best" if i == best else ""))
    return (
        f"<section><h2>Pilot runs ({len(frame)})</h2>{_table(head, rows)}"
        f'<p class="note">Sorted by {_e(SCORE_LABELS.get(data.target, data.target))}; the best pilot is highlighted.</p></section>'
    )


def _surrogate(data: ReportData) -> str:
    if not data.surrogate:
        return ""
    cv = data.surrogate.get("cv", {})
    rows = [
        _row(
            [
                _e(name) + (" (used)" if name == data.surrogate.get("model") else ""),
                _e(q["scheme"]),
                _num(q["r2"]),
                _num(q["rmse"], 4),
                _num(q["spearman"]),
            ]
        )
        for name, q in cv.items()
    ]
    skipped = "".join(
        f"<li>{_e(name)}: {_e(why)}</li>" for name, why in data.surrogate.get("skipped", {}).items()
    )
    skipped_html = f'<p class="note">Not fitted:</p><ul class="note">{skipped}</ul>' if skipped else ""
    return (
        f"<section><h2>Surrogate quality ({data.surrogate.get('runs', '?')} runs)</h2>"
        f"{_table(['model', 'validation', 'R²', 'RMSE', 'Spearman'], rows)}{skipped_html}"
        '<p class="note">Held-out predictions: each run is predicted by a model fitted without it. Spearman matters most: '
        "the search only needs the ranking of mixtures.</p>"
        f"{_trust(data.surrogate.get('trust'))}</section>"
    )


def _trust(trust: dict | None) -> str:
    if not trust:
        return ""
    verdict = "trusted" if trust["trusted"] else "not trusted"
    return f'<p class="note">Ranking test of the used model: <b>{verdict}</b>: {_e(trust["reason"])}.</p>'


def _proposals(data: ReportData) -> str:
    if not data.proposals:
        return ""
    rows = [
        _row(
            [
                str(i + 1),
                f'<span class="mixture">{_mixture_text(p["mixture"])}</span>',
                _num(p["mean"]),
                f"{_num(p['lower'])} – {_num(p['upper'])}",
                _e(p["source"]),
            ],
            "best" if i == 0 else "",
        )
        for i, p in enumerate(data.proposals)
    ]
    return (
        f"<section><h2>Proposed mixtures</h2>{_table(['#', 'mixture', 'predicted', '90% interval', 'source'], rows)}"
        '<p class="note">The first proposal was trained as the chosen mixture. Intervals are the surrogate&rsquo;s uncertainty: bootstrap refits, or the posterior of a Gaussian process.</p>'
        f"{_decision(data.decision)}</section>"
    )


def _decision(decision: dict | None) -> str:
    if not decision:
        return ""
    return f'<p class="note">Path taken: <b>{_e(decision["path"])}</b>: {_e(decision["reason"])}.</p>'


def _pass_rates(data: ReportData) -> str:
    if not data.pass_rates:
        return ""
    rates, zero = data.pass_rates["pass_rates"], data.pass_rates.get("zero_signal_per_domain", {})
    rows = [_row([_e(d), _num(rate), str(zero.get(d, 0))]) for d, rate in rates.items()]
    definition = data.pass_rates.get("definitions", {}).get("pass", "")
    g = data.pass_rates.get("num_generations", "?")
    return (
        f"<section><h2>Base policy pass rates</h2>{_table(['domain', 'pass rate', 'prompts without signal'], rows)}"
        f'<p class="note">{g} samples a prompt; {_e(definition)}. A prompt whose samples all earn the same reward gives GRPO '
        "no learning signal.</p></section>"
    )


def _plots(data: ReportData) -> str:
    figures = []
    for plot in data.plots:
        encoded = base64.b64encode(plot.path.read_bytes()).decode("ascii")
        figures.append(
            f'<figure><img src="data:image/png;base64,{encoded}" alt="{_e(plot.title)}">'
            f"<figcaption><b>{_e(plot.title)}.</b> {_e(plot.caption)}</figcaption></figure>"
        )
    return f"<section><h2>Plots</h2>{''.join(figures)}</section>" if figures else ""


def _settings(data: ReportData) -> str:
    items = {**data.settings, **{f"version {k}": v for k, v in data.versions.items()}}
    body = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items.items())
    return f"<section><h2>Settings</h2><dl>{body}</dl></section>" if body else ""


def _html_document(data: ReportData, generated: str) -> str:
    parts = [
        _headline(data),
        _comparison(data),
        _pilots(data),
        _surrogate(data),
        _proposals(data),
        _plots(data),
        _pass_rates(data),
        _settings(data),
    ]
    title = f"modomodo report: {data.experiment}"
    return (
        "<!doctype html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f"<body><main><header><h1>{_e(title)}</h1>"
        f'<div class="meta">{_e(len(data.domains))} domains: {_e(", ".join(data.domains))} · target {_e(data.target)} · generated {_e(generated)}</div>'
        f"</header>{''.join(parts)}</main><script>{_SELF_CHECK}</script></body></html>\n"
    )
