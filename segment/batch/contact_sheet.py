"""A contact sheet of a batch: thumbnails (original | segmentation) and key figures in one HTML page.

The thumbnails themselves are written per image by :mod:`segment.thumbnails`.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

_STYLE = """
body{font:14px system-ui,sans-serif;margin:1em;background:#f6f6f6;color:#222}
h1{font-size:1.3em;margin:.2em 0}
.counts span{margin-right:1.2em}
.bar{position:sticky;top:0;background:#f6f6f6;padding:.5em 0;z-index:1}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:6px}
.card.failed{border-color:#c33;background:#fff3f3}
.pair{display:flex;gap:4px;min-height:40px}
.pair img{width:50%;height:auto;object-fit:contain;background:#eee}
.name{font-weight:600;word-break:break-all}
.figs{color:#555;font-size:12px}
.error{color:#a00;font-size:12px;word-break:break-word}
.status{font-size:11px;text-transform:uppercase;padding:0 4px;border-radius:3px;background:#e4e4e4}
.failed .status{background:#c33;color:#fff}
"""

_SCRIPT = """
const q=document.getElementById('q'),f=document.getElementById('f');
function apply(){const t=q.value.toLowerCase(),only=f.checked;
for(const c of document.querySelectorAll('.card')){
const show=c.dataset.name.includes(t)&&(!only||c.classList.contains('failed'));
c.style.display=show?'':'none';}}
q.addEventListener('input',apply);f.addEventListener('change',apply);
"""


def _href(path: str) -> str:
    return html.escape(quote(path.replace(os.sep, "/")), quote=True)


def write_contact_sheet(
    outdir: str | os.PathLike,
    rows: Iterable[Mapping[str, Any]],
    *,
    title: str = "segment batch",
    counts: Mapping[str, int] | None = None,
) -> Path:
    """Write ``outdir/index.html``: one card per image with its thumbnails and figures.

    Parameters
    ----------
    outdir : path-like
        The batch output directory; thumbnail and output paths in ``rows``
        are relative to it.
    rows : iterable of mapping
        Per image: ``input``, ``status``, ``seconds``, ``components``,
        ``labels``, ``pixels``, ``error`` and optionally ``thumbnail``,
        ``segmentation_thumbnail`` and ``outputs`` (list of relative paths).
    title : str
        Page heading.
    counts : mapping, optional
        Status -> number of images, shown at the top.

    Returns
    -------
    Path
        The page written (atomically).
    """
    from segment import io  # loads NumPy: not at the top of a batch module (see segment.batch)

    outdir = Path(outdir)
    cards = []
    for row in rows:
        name = str(row["input"]) + (f" [page {row['page']}]" if row.get("page") else "")
        status = str(row["status"])
        pictures = ""
        if row.get("thumbnail") and row.get("segmentation_thumbnail"):
            links = row.get("outputs") or []
            target = _href(links[0]) if links else _href(row["thumbnail"])
            pictures = (
                f'<a class="pair" href="{target}">'
                f'<img loading="lazy" alt="original" src="{_href(row["thumbnail"])}">'
                f'<img loading="lazy" alt="segmentation" src="{_href(row["segmentation_thumbnail"])}"></a>'
            )
        figures = []
        if row.get("components") not in (None, ""):
            figures.append(f"{row['components']} components, {row['labels']} labels")
        if row.get("pixels") not in (None, ""):
            figures.append(f"{int(row['pixels']) / 1e6:.2f} MP")
        if row.get("seconds") not in (None, "") and status == "done":
            figures.append(f"{float(row['seconds']):.2f} s")
        if row.get("tiled"):
            figures.append("tiled")
        links = " ".join(f'<a href="{_href(p)}">{html.escape(Path(p).name)}</a>' for p in row.get("outputs") or [])
        error = f'<div class="error">{html.escape(str(row["error"]))}</div>' if row.get("error") else ""
        cards.append(
            f'<div class="card {html.escape(status)}" data-name="{html.escape(name.lower(), quote=True)}">'
            f'{pictures}<div class="name">{html.escape(name)} <span class="status">{html.escape(status)}</span></div>'
            f'<div class="figs">{html.escape(" · ".join(figures))}</div>{error}'
            f'<div class="figs">{links}</div></div>'
        )
    summary = " ".join(f"<span>{html.escape(k)}: <b>{v}</b></span>" for k, v in (counts or {}).items())
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<div class="bar"><h1>{html.escape(title)}</h1><div class="counts">{summary}</div>'
        '<input id="q" placeholder="filter by name" size="30"> '
        '<label><input id="f" type="checkbox"> failed only</label></div>'
        f'<div class="grid">{"".join(cards)}</div><script>{_SCRIPT}</script></body></html>\n'
    )
    path = outdir / "index.html"
    io.write_atomic(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path
