"""The WER report files of one scored set: a summary with breakdown tables, the utterances with
most errors and the confusions, the per-utterance alignments, a JSON summary and the HTML page.

This module orchestrates :mod:`~hybrid_asr.scoring.wer` (scores), :mod:`~hybrid_asr.scoring.analysis`
(confusions, JSON) and :mod:`~hybrid_asr.scoring.html` (charts), which import only ``wer``.
"""

import json
import logging
from pathlib import Path
from typing import List, Mapping, Optional, Tuple, Union

from hybrid_asr.scoring.analysis import format_confusions, summary_dict
from hybrid_asr.scoring.html import write_html_report
from hybrid_asr.scoring.wer import WerResult, format_alignment
from hybrid_asr.utils import write_text_atomic

logger = logging.getLogger(__name__)

#: Number of worst utterances listed in the ``<name>.txt`` report.
TOP_N = 10


def format_breakdown(title: str, parts: Mapping[str, WerResult]) -> List[str]:
    """Lines of a table with one row per key: ``key  %WER  errors / words  %SER  sentences``."""
    width = max([len(k) for k in parts] + [len(title)])
    lines = [f"{title:<{width}}  %WER    errors / words  %SER    sentences"]
    for k, r in parts.items():
        lines.append(f"{k:<{width}}  {r.wer:6.2f}  {r.errors:6d} / {r.words:<5d}  {r.ser:6.2f}  {r.sentences}")
    return lines


def write_report(result: WerResult, out_dir: Union[str, Path], name: str = "wer",
                 breakdowns: Optional[Mapping[str, Mapping[str, str]]] = None, html: bool = True) -> Tuple[Path, Path]:
    """Write a summary report and a per-utterance alignment report, each atomically.

    Args:
        result: the scores to report.
        out_dir: directory for the reports; created if missing.
        name: base name of the files.
        breakdowns: ``{title: {utterance id: key}}``, e.g. ``{"speaker": utt2spk}``: the summary
            gets a table of WER per key for each (as sclite's per-speaker report).
        html: also write the self-contained ``<name>.html`` (charts of the error types and of
            the WER per speaker; :func:`hybrid_asr.scoring.html.write_html_report`).

    Returns:
        ``(out_dir/<name>.txt, out_dir/<name>_details.txt)``. The first holds :meth:`WerResult.summary`,
        the breakdown tables, the (up to) 10 utterances with most errors and the most frequent
        substitutions, insertions and deletions; the second one :func:`format_alignment` block
        per utterance, separated by blank lines. ``<name>.json`` gets the same summary for
        machines (:func:`hybrid_asr.scoring.analysis.summary_dict`).
    """
    out_dir = Path(out_dir)
    summary_path = out_dir / f"{name}.txt"
    details_path = out_dir / f"{name}_details.txt"

    worst = sorted((u for u in result.utts if u.errors > 0), key=lambda u: (-u.errors, u.utt_id))[:TOP_N]
    lines = [result.summary(), ""]
    for title, utt2key in (breakdowns or {}).items():
        lines += format_breakdown(title, result.breakdown(utt2key)) + [""]
    lines.append(f"Utterances with most errors (up to {TOP_N}):")
    if not worst:
        lines.append("(none)")
    id_width = max((len(u.utt_id) for u in worst), default=0)
    for u in worst:
        lines.append(
            f"{u.utt_id:<{id_width}} {u.errors} / {u.ref_words} "
            f"({u.substitutions} sub, {u.deletions} del, {u.insertions} ins)"
        )
    lines += [""] + format_confusions(result)
    write_text_atomic(summary_path, "\n".join(lines) + "\n")
    write_text_atomic(details_path, "\n".join(format_alignment(u) for u in result.utts))
    write_text_atomic(out_dir / f"{name}.json", json.dumps(summary_dict(result, breakdowns), indent=2) + "\n")
    if html:
        write_html_report(result, out_dir / f"{name}.html", breakdowns, title=f"{name}: {out_dir}")
    logger.info("wrote %s and %s", summary_path, details_path)
    return summary_path, details_path


__all__ = ["TOP_N", "format_breakdown", "write_report"]
