import { readFileSync } from 'node:fs';
import type { ReportSection } from './document.ts';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A self-contained HTML report: styles inline, charts as data URIs, readable offline. */
export function renderReportHtml(title: string, subtitle: string, sections: ReportSection[]): string {
  const e = escapeHtml;
  const cell = (c: string, href?: string) => (href ? `<a href="${e(href)}">${e(c)}</a>` : e(c));
  const toc = sections.map((s, i) => `<li><a href="#${e(s.id)}">${i + 1}. ${e(s.title)}</a></li>`).join('');
  const body = sections
    .map((s, i) => {
      const facts = s.facts.length
        ? `<table class="facts">${s.facts.map(([k, v]) => `<tr><th>${e(k)}</th><td>${e(v)}</td></tr>`).join('')}</table>`
        : '';
      const miss = s.missing.map((m) => `<p class="missing">MISSING: ${e(m)}</p>`).join('');
      const text = s.text.map((t) => `<p>${e(t)}</p>`).join('');
      const tables = s.tables
        .map(
          (t) =>
            `<table class="data"><caption>${e(t.caption)}</caption><thead><tr>${t.header.map((h) => `<th>${e(h)}</th>`).join('')}</tr></thead><tbody>${t.rows.map((r, i) => `<tr>${r.map((c, j) => `<td class="${/^(PASS|FAIL)$/.test(c) ? c.toLowerCase() : ''}">${cell(c, j === r.length - 1 ? t.links?.[i] : undefined)}</td>`).join('')}</tr>`).join('')}</tbody></table>`,
        )
        .join('');
      const charts = s.charts
        .map(
          (c) =>
            `<figure><img alt="${e(c.title)}" src="data:image/png;base64,${readFileSync(c.png).toString('base64')}"><figcaption>${e(c.title)}</figcaption></figure>`,
        )
        .join('');
      return `<section id="${e(s.id)}"><h2>${i + 1}. ${e(s.title)}</h2>${miss}${text}${facts}${tables}<div class="charts">${charts}</div></section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${e(title)}</title>
<style>
body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #4c78a8;padding-bottom:.2em;margin-top:2em}
.subtitle{color:#555}nav ol{columns:2}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}caption{font-weight:bold;text-align:left;padding:.3em 0}
table.facts th{background:#f3f6fa;width:30%}table.data thead th{background:#f3f6fa}
td.pass{color:#1a7f37;font-weight:bold}td.fail{color:#cf222e;font-weight:bold}
.missing{background:#fff4e5;border-left:4px solid #d4a72c;padding:.4em .8em}
.charts{display:flex;flex-wrap:wrap;gap:1em}figure{margin:0;max-width:48%}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
</style></head><body>
<h1>${e(title)}</h1><p class="subtitle">${e(subtitle)}</p>
<nav><h2>Contents</h2><ol>${toc}</ol></nav>
${body}
</body></html>
`;
}
