import { gradeColour, gradeLabel, hex, rampColour } from './colours.ts';
import { dziSource, type TileFormat } from './dzi.ts';
import type { SlideHeatmap } from './heatmap.ts';

/** What the page knows of one slide before its tiles' scores load. */
export interface ViewerSlideInfo {
  index: number;
  id: string;
  width: number;
  height: number;
  source: ReturnType<typeof dziSource>;
  summary: {
    /** Null when the slide had no tile to score. */
    pred: string | null;
    reference: string | null;
    uncertainty: number;
    oodFlag: boolean | null;
    priority: number;
  } | null;
  overlays: Record<string, string>;
  legend: { label: string; colour: string }[];
}

export function slideInfo(
  index: number,
  id: string,
  width: number,
  height: number,
  format: TileFormat,
  heatmap?: SlideHeatmap,
): ViewerSlideInfo {
  const k = heatmap?.classes.length ?? 6;
  const legend = heatmap ? heatmap.classes.map((_, c) => ({ label: gradeLabel(heatmap.classes, c), colour: hex(gradeColour(c, k)) })) : [];
  return {
    index,
    id,
    width,
    height,
    source: dziSource(`slides/${index}_files/`, width, height, format),
    summary: heatmap
      ? {
          pred: heatmap.slidePrediction && gradeLabel(heatmap.classes, heatmap.slidePrediction.pred),
          reference: heatmap.reference === null ? null : gradeLabel(heatmap.classes, heatmap.reference),
          uncertainty: heatmap.slidePrediction?.uncertainty ?? 1,
          oodFlag: heatmap.slidePrediction?.oodFlag ?? null,
          priority: heatmap.referralPriority,
        }
      : null,
    overlays: Object.fromEntries(Object.entries(heatmap?.overlays ?? {}).map(([k2, f]) => [k2, `slides/${index}/${f}`])),
    legend,
  };
}

/** data.js: the slide list, loaded with a script tag so the page also works from file://. */
export function dataScript(slides: ViewerSlideInfo[]): string {
  const ramp = [0, 0.25, 0.5, 0.75, 1].map((t) => hex(rampColour(t)));
  return `window.GRADELAB = ${JSON.stringify({ slides, ramp })};\n`;
}

/** slides/<i>/tiles.js: one slide's tile scores, loaded when the slide is opened. */
export function tilesScript(index: number, h: SlideHeatmap): string {
  const tiles = h.tiles.map((t) => [t.x, t.y, t.probs.map((p) => Math.round(p * 1e4) / 1e4), t.pred, t.ood, t.oodFlag, t.attention]);
  return `window.GRADELAB_TILES = window.GRADELAB_TILES || {};\nwindow.GRADELAB_TILES[${index}] = ${JSON.stringify({ span: h.tileSpan, classes: h.classes.map((_, c) => gradeLabel(h.classes, c)), tiles })};\n`;
}

/** The viewer page: OpenSeadragon, the slide list by referral priority, overlays, legend, tile values. */
export function viewerPage(title: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title.replace(/</g, '&lt;')}</title>
<style>
body{margin:0;font:13px system-ui,sans-serif;display:grid;grid-template-columns:260px 1fr 260px;height:100vh;color:#222}
#list{overflow:auto;border-right:1px solid #ccc}#list div{padding:6px 8px;border-bottom:1px solid #eee;cursor:pointer}
#list div.on{background:#e8f0ff}#list .tag{font-size:11px;padding:0 4px;border-radius:3px;margin-right:4px;background:#eee}
#list .ood{background:#f3c;color:#fff}#list .disc{background:#c33;color:#fff}
#main{position:relative}#osd{position:absolute;inset:40px 0 0 0;background:#fff}
#bar{height:40px;display:flex;gap:10px;align-items:center;padding:0 8px;border-bottom:1px solid #ccc}
#side{border-left:1px solid #ccc;padding:8px;overflow:auto}#legend span{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
#info table{border-collapse:collapse}#info td{padding:1px 4px}.bar{height:8px;background:#4a7;display:inline-block}
</style></head><body>
<div id="list"></div>
<div id="main"><div id="bar"><b id="title"></b>
<label>overlay <select id="overlay"><option value="none">none</option></select></label>
<label>opacity <input id="opacity" type="range" min="0" max="1" step="0.05" value="0.5"></label></div><div id="osd"></div></div>
<div id="side"><h3>Legend</h3><div id="legend"></div><h3>Tile</h3><div id="info">Click a tile.</div></div>
<script src="openseadragon/openseadragon.min.js"></script>
<script src="data.js"></script>
<script>
const G = window.GRADELAB, $ = (id) => document.getElementById(id);
const smooth = !/[?&]smooth=0/.test(location.search);
const viewer = OpenSeadragon({ id: 'osd', prefixUrl: 'openseadragon/images/', showNavigator: true, imageSmoothingEnabled: smooth, drawer: 'canvas',
  gestureSettingsMouse: { clickToZoom: false }, crossOriginPolicy: false });
const state = { slide: null, overlay: 'none', item: null, opacity: 0.5 };
const slides = [...G.slides].sort((a, b) => (b.summary ? b.summary.priority : -1) - (a.summary ? a.summary.priority : -1));
function pct(v) { return (100 * v).toFixed(1) + '%'; }
function renderList() {
  $('list').innerHTML = '';
  for (const s of slides) {
    const d = document.createElement('div');
    d.dataset.index = s.index;
    const m = s.summary;
    d.innerHTML = '<b>' + s.id + '</b><br>' + (m && m.pred === null ? '<span class="tag disc">not scored: no tile with enough tissue</span>' + (m.reference ? '<br>reference ' + m.reference : '') : m ? '<span style="white-space:nowrap">AI ' + m.pred + (m.reference ? ' / reference ' + m.reference : '') + '</span><br>' +
      (m.reference && m.reference !== m.pred ? '<span class="tag disc">discordant</span>' : '') + (m.oodFlag ? '<span class="tag ood">OOD</span>' : '') +
      '<span class="tag">uncertainty ' + m.uncertainty.toFixed(2) + '</span>' : 'no heatmap');
    d.onclick = () => openSlide(s.index);
    $('list').appendChild(d);
  }
}
function loadTiles(i) {
  return new Promise((resolve) => {
    if (!G.slides[i].summary || (window.GRADELAB_TILES && window.GRADELAB_TILES[i])) return resolve();
    const sc = document.createElement('script'); sc.src = 'slides/' + i + '/tiles.js'; sc.onload = resolve; sc.onerror = resolve; document.head.appendChild(sc);
  });
}
function legend() {
  const s = G.slides[state.slide], el = $('legend');
  if (state.overlay === 'grade' || state.overlay === 'truth') el.innerHTML = s.legend.map((l) => '<div><span style="background:' + l.colour + '"></span>' + l.label + '</div>').join('') + (state.overlay === 'truth' ? '<div><span style="background:#e600e6"></span>anomaly</div>' : '');
  else if (state.overlay === 'ood' || state.overlay === 'attention') el.innerHTML = '<div>' + G.ramp.map((c) => '<span style="background:' + c + '"></span>').join('') + ' low to high</div>' + (state.overlay === 'ood' ? '<div><span style="background:#e600e6"></span>flagged</div>' : '');
  else if (state.overlay === 'tissue') el.innerHTML = '<div><span style="background:#00c850"></span>tissue</div>';
  else el.innerHTML = 'No overlay.';
}
function setOverlay(kind) {
  state.overlay = kind; $('overlay').value = kind;
  if (state.item) { viewer.world.removeItem(state.item); state.item = null; }
  legend();
  const url = G.slides[state.slide].overlays[kind];
  if (!url) return Promise.resolve();
  return new Promise((resolve) => viewer.addTiledImage({ tileSource: { type: 'image', url, buildPyramid: false }, x: 0, y: 0, width: 1, opacity: state.opacity,
    success: (e) => { state.item = e.item; e.item.addOnceHandler('fully-loaded-change', () => resolve()); if (e.item.getFullyLoaded()) resolve(); }, error: () => resolve() }));
}
async function openSlide(i) {
  state.slide = i; state.item = null;
  document.querySelectorAll('#list div').forEach((d) => d.classList.toggle('on', Number(d.dataset.index) === i));
  const s = G.slides[i]; $('title').textContent = s.id; location.hash = 'slide=' + encodeURIComponent(s.id);
  $('overlay').innerHTML = '<option value="none">none</option>' + Object.keys(s.overlays).map((k) => '<option value="' + k + '">' + k + '</option>').join('');
  await loadTiles(i);
  await new Promise((resolve) => { viewer.addOnceHandler('open', resolve); viewer.open(s.source); });
  await setOverlay(s.overlays[state.overlay] ? state.overlay : 'none');
  $('info').textContent = 'Click a tile.';
}
function tileAt(i, x, y) {
  const T = window.GRADELAB_TILES && window.GRADELAB_TILES[i];
  if (!T) return null;
  for (const t of T.tiles) if (x >= t[0] && x < t[0] + T.span && y >= t[1] && y < t[1] + T.span) return { T, t };
  return null;
}
function showTile(x, y) {
  const hit = tileAt(state.slide, x, y);
  if (!hit) { $('info').textContent = 'No scored tile at (' + Math.round(x) + ', ' + Math.round(y) + ').'; return; }
  const { T, t } = hit;
  $('info').innerHTML = '<div>tile at (' + t[0] + ', ' + t[1] + '): <b>' + T.classes[t[3]] + '</b></div><table>' +
    t[2].map((p, c) => '<tr><td>' + T.classes[c] + '</td><td>' + pct(p) + '</td><td><span class="bar" style="width:' + Math.round(80 * p) + 'px"></span></td></tr>').join('') + '</table>' +
    (t[4] !== null ? '<div>OOD score ' + t[4].toFixed(3) + (t[5] ? ' <b>(flagged)</b>' : '') + '</div>' : '') + (t[6] !== null ? '<div>attention ' + t[6].toFixed(4) + '</div>' : '');
}
viewer.addHandler('canvas-click', (e) => {
  if (!e.quick || state.slide === null) return;
  e.preventDefaultAction = true;
  const p = viewer.world.getItemAt(0).viewerElementToImageCoordinates(e.position);
  showTile(p.x, p.y);
});
$('overlay').onchange = (e) => setOverlay(e.target.value);
$('opacity').oninput = (e) => { state.opacity = Number(e.target.value); if (state.item) state.item.setOpacity(state.opacity); };
renderList();
const wanted = decodeURIComponent((location.hash.match(/slide=([^&]+)/) || [])[1] || '');
const first = G.slides.find((s) => s.id === wanted) || slides[0];
window.gradelabViewer = { viewer, openSlide, setOverlay, showTile, ready: first ? openSlide(first.index) : Promise.resolve() };
</script></body></html>
`;
}
