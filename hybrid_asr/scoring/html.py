"""A self-contained HTML report of a scored decode: summary, a chart of the error types, WER per
speaker (table and chart), the most frequent confusions and the aligned utterances with errors.
The charts are matplotlib PNGs embedded as base64, so the file opens anywhere without network."""

import base64
import html
import io
from pathlib import Path
from typing import Mapping, Optional, Union

from hybrid_asr.scoring.analysis import confusions
from hybrid_asr.scoring.wer import EPS, WerResult
from hybrid_asr.utils import write_text_atomic

_STYLE = """body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}th{background:#eee}td.l{text-align:left}
.S{background:#fdd}.D{background:#ddf}.I{background:#dfd}pre{font-size:90%}"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _charts(result: WerResult, parts: Optional[Mapping[str, WerResult]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 2.5))
    ax.bar(["substitutions", "deletions", "insertions"], [result.substitutions, result.deletions, result.insertions],
           color=["#d55", "#55d", "#5a5"])
    ax.set_ylabel("errors")
    ax.set_title(f"error types (WER {result.wer:.2f}%)")
    types = _png(fig)
    plt.close(fig)
    speakers = None
    if parts:
        fig, ax = plt.subplots(figsize=(max(4, 0.35 * len(parts)), 2.8))
        # bars at positions, speaker ids as tick labels: matplotlib's categorical axis logs a line
        # per chart when the ids look like numbers (speechocean762's "0026")
        ax.bar(range(len(parts)), [r.wer for r in parts.values()], color="#888")
        ax.set_xticks(range(len(parts)))
        ax.set_xticklabels(list(parts))
        ax.axhline(result.wer, color="#d55", linestyle="--", label="all")
        ax.set_ylabel("WER %")
        ax.tick_params(axis="x", rotation=90)
        ax.legend()
        speakers = _png(fig)
        plt.close(fig)
    return types, speakers


def write_html_report(result: WerResult, path: Union[str, Path],
                      breakdowns: Optional[Mapping[str, Mapping[str, str]]] = None, title: str = "WER report",
                      top: int = 20) -> Path:
    """Write the report (atomically).

    Args:
        result: the scores.
        path: the ``.html`` file.
        breakdowns: ``{title: {utt: key}}`` as in :func:`hybrid_asr.scoring.report.write_report`; the
            ``speaker`` one (if given) gets a chart too.
        title: page title.
        top: rows of the confusion tables and the number of utterances shown.

    Returns:
        ``path``.
    """
    esc = html.escape
    speakers = result.breakdown(breakdowns["speaker"]) if breakdowns and "speaker" in breakdowns else None
    types_png, speakers_png = _charts(result, speakers)
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
           f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1>",
           "<table><tr><th>%WER</th><th>errors</th><th>words</th><th>sub</th><th>del</th><th>ins</th><th>%SER</th>"
           "<th>sentences</th></tr>",
           f"<tr><td>{result.wer:.2f}</td><td>{result.errors}</td><td>{result.words}</td><td>{result.substitutions}"
           f"</td><td>{result.deletions}</td><td>{result.insertions}</td><td>{result.ser:.2f}</td>"
           f"<td>{result.sentences}</td></tr></table>",
           f"<img alt='error types' src='data:image/png;base64,{types_png}'>"]
    for name, utt2key in (breakdowns or {}).items():
        out.append(f"<h2>WER per {esc(name)}</h2><table><tr><th>{esc(name)}</th><th>%WER</th><th>errors</th>"
                   "<th>words</th><th>%SER</th><th>sentences</th></tr>")
        for key, r in result.breakdown(utt2key).items():
            out.append(f"<tr><td class='l'>{esc(key)}</td><td>{r.wer:.2f}</td><td>{r.errors}</td><td>{r.words}</td>"
                       f"<td>{r.ser:.2f}</td><td>{r.sentences}</td></tr>")
        out.append("</table>")
        if name == "speaker" and speakers_png:
            out.append(f"<img alt='WER per speaker' src='data:image/png;base64,{speakers_png}'>")
    c = confusions(result)
    out.append("<h2>Most frequent errors</h2><table><tr><th>substitution (ref &rarr; hyp)</th><th>count</th></tr>")
    out += [f"<tr><td class='l'>{esc(r)} &rarr; {esc(h)}</td><td>{n}</td></tr>" for (r, h), n in
            c["substitutions"].most_common(top)]
    out.append("</table>")
    for kind in ("deletions", "insertions"):
        out.append(f"<table><tr><th>{kind[:-1]}</th><th>count</th></tr>")
        out += [f"<tr><td class='l'>{esc(w)}</td><td>{n}</td></tr>" for w, n in c[kind].most_common(top)]
        out.append("</table>")
    out.append(f"<h2>Utterances with errors (up to {top}, most errors first)</h2>")
    worst = sorted((u for u in result.utts if u.errors), key=lambda u: (-u.errors, u.utt_id))[:top]
    for u in worst:
        cells_r, cells_h = [], []
        for r, h in u.alignment:
            kind = "I" if r == EPS else "D" if h == EPS else ("" if r == h else "S")
            cls = f" class='{kind}'" if kind else ""
            cells_r.append(f"<td{cls}>{esc('***' if r == EPS else r)}</td>")
            cells_h.append(f"<td{cls}>{esc('***' if h == EPS else h)}</td>")
        out.append(f"<p>{esc(u.utt_id)}: {u.errors} errors / {u.ref_words} words</p><table><tr><th>REF</th>"
                   + "".join(cells_r) + "</tr><tr><th>HYP</th>" + "".join(cells_h) + "</tr></table>")
    out.append("</body></html>")
    write_text_atomic(path, "\n".join(out) + "\n")
    return Path(path)
