/**
 * The viewer's browser side, shipped as viewer.js and viewer.css beside index.html (never inline: the
 * page's Content-Security-Policy allows scripts from the viewer's own files only). Every value from the
 * data (slide ids from file names and manifests, grades, scores) reaches the page as text through the
 * DOM (textContent, Option, style properties), never as HTML.
 */
export const VIEWER_SCRIPT = String.raw`'use strict';
(function () {
const G = window.GRADELAB, $ = (id) => document.getElementById(id);
/** An element with text and classes; children appended in order. Text is never parsed as HTML. */
function el(tag, props, children) {
  const e = document.createElement(tag);
  if (props) {
    if (props.text !== undefined) e.textContent = String(props.text);
    if (props.cls) e.className = props.cls;
    if (props.colour) e.style.background = props.colour;
    if (props.width !== undefined) e.style.width = props.width + 'px';
  }
  for (const c of children || []) if (c) e.appendChild(c);
  return e;
}
function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
const params = new URLSearchParams(location.hash.slice(1));
const smooth = !/[?&]smooth=0/.test(location.search);
const viewer = OpenSeadragon({ id: 'osd', prefixUrl: 'openseadragon/images/', showNavigator: true, imageSmoothingEnabled: smooth, drawer: 'canvas',
  gestureSettingsMouse: { clickToZoom: false }, crossOriginPolicy: false });
const state = { slide: null, overlay: params.get('overlay') || 'grade', item: null, opacity: 0.5 };
const slides = [...G.slides].sort((a, b) => (b.summary ? b.summary.priority : -1) - (a.summary ? a.summary.priority : -1));
function pct(v) { return (100 * v).toFixed(1) + '%'; }
function tag(text, cls) { return el('span', { text, cls: 'tag' + (cls ? ' ' + cls : '') }); }
function renderList() {
  const list = $('list');
  clear(list);
  for (const s of slides) {
    const m = s.summary;
    const parts = [el('b', { text: s.id }), el('br')];
    if (!m) parts.push(document.createTextNode('no heatmap'));
    else if (m.pred === null) {
      parts.push(tag('not scored: no tile with enough tissue', 'disc'));
      if (m.reference) parts.push(el('br'), document.createTextNode('reference ' + m.reference));
    } else {
      parts.push(el('span', { text: 'AI ' + m.pred + (m.reference ? ' / reference ' + m.reference : ''), cls: 'nowrap' }), el('br'));
      if (m.patterns) parts.push(el('span', { text: m.patterns, cls: 'patterns' }), el('br'));
      if (m.reference && m.reference !== m.pred) parts.push(tag('discordant', 'disc'));
      if (m.oodFlag) parts.push(tag('OOD', 'ood'));
      parts.push(tag('uncertainty ' + m.uncertainty.toFixed(2)));
    }
    const d = el('div', null, parts);
    d.dataset.index = String(s.index);
    d.onclick = () => openSlide(s.index);
    list.appendChild(d);
  }
}
function loadTiles(i) {
  return new Promise((resolve) => {
    if (!G.slides[i].summary || (window.GRADELAB_TILES && window.GRADELAB_TILES[i])) return resolve();
    const sc = document.createElement('script'); sc.src = 'slides/' + i + '/tiles.js'; sc.onload = resolve; sc.onerror = resolve; document.head.appendChild(sc);
  });
}
function swatch(colour) { return el('span', { cls: 'swatch', colour }); }
function legend() {
  const s = G.slides[state.slide], box = $('legend');
  clear(box);
  if (state.overlay === 'grade' || state.overlay === 'truth') {
    for (const l of state.overlay === 'truth' ? G.truthLegend : s.legend) box.appendChild(el('div', null, [swatch(l.colour), document.createTextNode(l.label)]));
    if (state.overlay === 'truth') box.appendChild(el('div', null, [swatch('#e600e6'), document.createTextNode('anomaly')]));
    else if (s.legendNote) box.appendChild(el('p', { text: s.legendNote, cls: 'note' }));
  } else if (state.overlay === 'ood' || state.overlay === 'attention') {
    box.appendChild(el('div', null, [...G.ramp.map(swatch), document.createTextNode(' low to high')]));
    if (state.overlay === 'ood') box.appendChild(el('div', null, [swatch('#e600e6'), document.createTextNode('flagged')]));
  } else if (state.overlay === 'tissue') box.appendChild(el('div', null, [swatch('#00c850'), document.createTextNode('tissue')]));
  else box.textContent = 'No overlay.';
}
function setOverlay(kind) {
  state.overlay = kind; $('overlay').value = G.slides[state.slide].overlays[kind] ? kind : 'none';
  if (state.item) { viewer.world.removeItem(state.item); state.item = null; }
  legend();
  const url = G.slides[state.slide].overlays[kind];
  if (!url) return Promise.resolve();
  return new Promise((resolve) => viewer.addTiledImage({ tileSource: { type: 'image', url, buildPyramid: false }, x: 0, y: 0, width: 1, opacity: state.opacity,
    success: (e) => { state.item = e.item; e.item.addOnceHandler('fully-loaded-change', () => resolve()); if (e.item.getFullyLoaded()) resolve(); }, error: () => resolve() }));
}
/** Scale bar and equivalent objective magnification (10x is about 1 um per screen pixel). */
function updateScale() {
  const s = state.slide === null ? null : G.slides[state.slide];
  const item = viewer.world.getItemAt(0);
  if (!s || !item) return;
  if (!s.mpp) { $('scalelabel').textContent = 'scale unknown (the slide does not record microns per pixel)'; $('scaleline').style.width = '0px'; $('magnification').textContent = ''; return; }
  const zoom = item.viewportToImageZoom(viewer.viewport.getZoom(true));
  const umPerScreenPx = s.mpp / zoom;
  const target = 120 * umPerScreenPx;
  const pow = Math.pow(10, Math.floor(Math.log10(target)));
  const nice = [1, 2, 5, 10].map((m) => m * pow).filter((v) => v <= target).pop() || pow;
  $('scaleline').style.width = Math.round(nice / umPerScreenPx) + 'px';
  $('scalelabel').textContent = nice >= 1000 ? (nice / 1000) + ' mm' : nice + ' \u00b5m';
  const mag = 10 / umPerScreenPx;
  $('magnification').textContent = '\u2248 ' + (mag >= 10 ? Math.round(mag) : mag.toFixed(1)) + 'x (' + umPerScreenPx.toPrecision(2) + ' \u00b5m/px)';
}
async function openSlide(i) {
  state.slide = i; state.item = null;
  document.querySelectorAll('#list div').forEach((d) => d.classList.toggle('on', Number(d.dataset.index) === i));
  const s = G.slides[i]; $('title').textContent = s.id;
  history.replaceState(null, '', '#slide=' + encodeURIComponent(s.id) + (state.overlay !== 'none' ? '&overlay=' + encodeURIComponent(state.overlay) : ''));
  const select = $('overlay');
  clear(select);
  select.appendChild(new Option('none', 'none'));
  for (const k of Object.keys(s.overlays)) select.appendChild(new Option(k, k));
  await loadTiles(i);
  await new Promise((resolve) => { viewer.addOnceHandler('open', resolve); viewer.open(s.source); });
  await setOverlay(s.overlays[state.overlay] ? state.overlay : 'none');
  updateScale();
  $('info').textContent = 'Click a tile.';
}
function tileAt(i, x, y) {
  const T = window.GRADELAB_TILES && window.GRADELAB_TILES[i];
  if (!T) return null;
  for (const t of T.tiles) if (x >= t[0] && x < t[0] + T.span && y >= t[1] && y < t[1] + T.span) return { T, t };
  return null;
}
function showTile(x, y) {
  const hit = tileAt(state.slide, x, y), info = $('info');
  clear(info);
  if (!hit) { info.textContent = 'No scored tile at (' + Math.round(x) + ', ' + Math.round(y) + ').'; return; }
  const { T, t } = hit;
  info.appendChild(el('div', null, [document.createTextNode('tile at (' + t[0] + ', ' + t[1] + '): '), el('b', { text: T.classes[t[3]] })]));
  const table = el('table');
  t[2].forEach((p, c) => table.appendChild(el('tr', null, [el('td', { text: T.classes[c] }), el('td', { text: pct(p) }), el('td', null, [el('span', { cls: 'bar', width: Math.round(80 * p) })])])));
  info.appendChild(table);
  if (t[4] !== null) info.appendChild(el('div', null, [document.createTextNode('OOD score ' + t[4].toFixed(3)), t[5] ? el('b', { text: ' (flagged)' }) : null]));
  if (t[6] !== null) info.appendChild(el('div', { text: 'attention ' + t[6].toFixed(4) }));
}
viewer.addHandler('canvas-click', (e) => {
  if (!e.quick || state.slide === null) return;
  e.preventDefaultAction = true;
  const p = viewer.world.getItemAt(0).viewerElementToImageCoordinates(e.position);
  showTile(p.x, p.y);
});
viewer.addHandler('animation', updateScale);
viewer.addHandler('zoom', updateScale);
$('overlay').onchange = (e) => setOverlay(e.target.value);
$('opacity').oninput = (e) => { state.opacity = Number(e.target.value); if (state.item) state.item.setOpacity(state.opacity); };
renderList();
const wanted = params.get('slide');
const first = G.slides.find((s) => s.id === wanted) || slides[0];
window.gradelabViewer = { viewer, openSlide, setOverlay, showTile, updateScale, ready: first ? openSlide(first.index) : Promise.resolve() };
})();
`;

export const VIEWER_CSS = `body{margin:0;font:13px system-ui,sans-serif;display:grid;grid-template-columns:260px 1fr 260px;height:100vh;color:#222}
#list{overflow:auto;border-right:1px solid #ccc}#list div{padding:6px 8px;border-bottom:1px solid #eee;cursor:pointer}
#list div.on{background:#e8f0ff}.tag{font-size:11px;padding:0 4px;border-radius:3px;margin-right:4px;background:#eee}
.ood{background:#f3c;color:#fff}.disc{background:#c33;color:#fff}.nowrap{white-space:nowrap}
#main{position:relative}#osd{position:absolute;inset:40px 0 0 0;background:#fff}
#bar{height:40px;display:flex;gap:10px;align-items:center;padding:0 8px;border-bottom:1px solid #ccc}
#magnification{margin-left:auto;color:#555}
#scalebar{position:absolute;left:12px;bottom:12px;background:rgba(255,255,255,.85);padding:3px 6px;border-radius:3px;pointer-events:none}
#scaleline{height:4px;background:#111;margin-bottom:2px}
#side{border-left:1px solid #ccc;padding:8px;overflow:auto}.swatch{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}
.note{color:#555;font-size:12px}#info table{border-collapse:collapse}#info td{padding:1px 4px}.bar{height:8px;background:#4a7;display:inline-block}
`;
