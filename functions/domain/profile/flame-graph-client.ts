/**
 * The script of our flame graph pages, as text inlined into each page (no external fetches; the page is served
 * under `Content-Security-Policy: sandbox allow-scripts`, so it uses no cookies or storage). It reads the JSON of
 * `<script id="profile-data">`, lays the tree out once and draws it on a canvas, root at the top. Names reach the
 * page only through `fillText` and `textContent`.
 *
 * Data: `{ kind: 'flame', samples, names, nodes }` with nodes flat `[name, depth, total]` in preorder, or
 * `{ kind: 'diff', base: { samples }, target: { samples }, names, nodes, frames }` with nodes flat
 * `[name, depth, targetTotal, targetSelf, baseTotal, baseSelf]`. Name -1 is the root.
 *
 * Plain ES2017 in a string, not compiled TypeScript: what the browser runs is exactly what is reviewed here.
 */
export const FLAME_GRAPH_SCRIPT = String.raw`(function () {
  'use strict';
  var ROW = 17;
  // Browsers refuse canvases much taller than 32,767 px: deeper rows are not drawn.
  var MAX_ROWS = 1900;
  var data = JSON.parse(document.getElementById('profile-data').textContent);
  var diff = data.kind === 'diff';
  var stride = diff ? 6 : 3;
  var raw = data.nodes;
  var names = data.names;
  var n = raw.length / stride;
  var nameOf = new Int32Array(n);
  var depth = new Int32Array(n);
  var parent = new Int32Array(n);
  var end = new Int32Array(n);
  var x = new Float64Array(n);
  var w = new Float64Array(n);
  var tSamples = diff ? data.target.samples : data.samples;
  var bSamples = diff ? data.base.samples : 0;
  var maxDepth = 0;

  // Parents and subtree ends from the preorder depths.
  var ancestors = [];
  for (var i = 0; i < n; i++) {
    nameOf[i] = raw[i * stride];
    depth[i] = raw[i * stride + 1];
    if (depth[i] > maxDepth) maxDepth = depth[i];
    while (ancestors.length > 0 && depth[ancestors[ancestors.length - 1]] >= depth[i]) end[ancestors.pop()] = i;
    parent[i] = ancestors.length > 0 ? ancestors[ancestors.length - 1] : -1;
    ancestors.push(i);
  }
  while (ancestors.length > 0) end[ancestors.pop()] = n;

  // A flame-graph node's self count: its total less its children's.
  var selfOf = new Float64Array(n);
  if (!diff) {
    for (i = 0; i < n; i++) selfOf[i] = raw[i * stride + 2];
    for (i = 1; i < n; i++) selfOf[parent[i]] -= raw[i * stride + 2];
  }

  function tTotal(i) { return raw[i * stride + 2]; }
  function tSelf(i) { return diff ? raw[i * stride + 3] : selfOf[i]; }
  function bTotal(i) { return raw[i * stride + 4]; }
  function bSelf(i) { return raw[i * stride + 5]; }
  function frac(count, samples) { return samples > 0 ? count / samples : 0; }
  function selfDelta(i) { return frac(tSelf(i), tSamples) - frac(bSelf(i), bSamples); }

  if (!diff) {
    for (i = 0; i < n; i++) w[i] = tTotal(i);
  } else {
    // Widths follow the target. A frame only in the base gets its base width, scaled to the target's samples, so
    // a hot path that vanished stays visible; its ancestors widen by as much (their labels still show true %).
    var scale = bSamples > 0 ? (tSamples > 0 ? tSamples / bSamples : 1) : 0;
    for (i = 0; i < n; i++) w[i] = tTotal(i) > 0 ? tSelf(i) : bTotal(i) * scale;
    for (i = n - 1; i > 0; i--) if (tTotal(parent[i]) > 0) w[parent[i]] += w[i];
  }
  var cursor = new Float64Array(n);
  for (i = 1; i < n; i++) {
    x[i] = cursor[parent[i]] + x[parent[i]];
    cursor[parent[i]] += w[i];
  }

  var maxDelta = 0;
  if (diff) for (i = 0; i < n; i++) maxDelta = Math.max(maxDelta, Math.abs(selfDelta(i)));

  function label(i) { return nameOf[i] < 0 ? 'all' : names[nameOf[i]]; }
  function pct(v) { return (v * 100).toFixed(2) + '%'; }
  function hue(s) {
    var h = 0;
    for (var k = 0; k < s.length; k++) h = (h * 31 + s.charCodeAt(k)) | 0;
    return h >>> 0;
  }
  var matches = null;
  function colour(i) {
    if (matches && matches[i]) return '#d946ef';
    if (diff) {
      var d = selfDelta(i);
      if (d === 0 || maxDelta === 0) return '#cfcfcf';
      var light = 88 - 40 * Math.min(1, Math.abs(d) / maxDelta);
      return (d > 0 ? 'hsl(0,85%,' : 'hsl(215,85%,') + light + '%)';
    }
    var h = hue(label(i));
    return 'hsl(' + (h % 50) + ',' + (70 + (h >>> 8) % 20) + '%,' + (55 + (h >>> 16) % 12) + '%)';
  }

  var canvas = document.getElementById('graph');
  var ctx = canvas.getContext('2d');
  var tooltip = document.getElementById('tooltip');
  var status = document.getElementById('status');
  var search = document.getElementById('search');
  var rows = Math.min(maxDepth + 1, MAX_ROWS);
  var view = { node: 0, x0: 0, x1: w[0] };
  var drawn = [];
  var font = '12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace';

  function render() {
    // The chart's box, without the page's padding.
    var width = canvas.parentElement.clientWidth;
    var ratio = window.devicePixelRatio || 1;
    canvas.style.width = width + 'px';
    canvas.style.height = rows * ROW + 'px';
    canvas.width = Math.floor(width * ratio);
    canvas.height = Math.floor(rows * ROW * ratio);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.font = font;
    ctx.textBaseline = 'middle';
    var charWidth = ctx.measureText('M').width;
    drawn = [];
    for (var r = 0; r < rows; r++) drawn.push([]);
    if (!(view.x1 > view.x0)) return;
    var k = width / (view.x1 - view.x0);
    for (var j = 0; j < n; ) {
      var sx = (x[j] - view.x0) * k;
      var sw = w[j] * k;
      if (sw < 0.4 || sx + sw <= 0 || sx >= width || depth[j] >= rows) {
        j = end[j];
        continue;
      }
      var left = Math.max(sx, 0);
      var right = Math.min(sx + sw, width);
      var y = depth[j] * ROW;
      ctx.fillStyle = colour(j);
      ctx.fillRect(left, y, Math.max(right - left - 1, 0.4), ROW - 1);
      var chars = Math.floor((right - left - 6) / charWidth);
      if (chars >= 3) {
        var text = label(j);
        if (text.length > chars) text = text.slice(0, chars - 1) + '\u2026';
        ctx.fillStyle = '#111';
        ctx.fillText(text, left + 3, y + ROW / 2);
      }
      drawn[depth[j]].push(j, left, right);
      j++;
    }
  }

  function nodeAt(event) {
    var box = canvas.getBoundingClientRect();
    var px = event.clientX - box.left;
    var row = drawn[Math.floor((event.clientY - box.top) / ROW)];
    if (!row) return -1;
    for (var q = 0; q < row.length; q += 3) if (px >= row[q + 1] && px < row[q + 2]) return row[q];
    return -1;
  }

  function describe(i) {
    var lines = [label(i)];
    if (!diff) {
      lines.push(tTotal(i) + ' samples, ' + pct(frac(tTotal(i), tSamples)) + ' (self ' + tSelf(i) + ')');
    } else {
      var d = selfDelta(i);
      lines.push('self: base ' + pct(frac(bSelf(i), bSamples)) + ', target ' + pct(frac(tSelf(i), tSamples)) +
        ', delta ' + (d > 0 ? '+' : '') + (d * 100).toFixed(2) + ' pp');
      lines.push('total: base ' + pct(frac(bTotal(i), bSamples)) + ' (' + bTotal(i) + '), target ' +
        pct(frac(tTotal(i), tSamples)) + ' (' + tTotal(i) + ')');
    }
    return lines.join('\n');
  }

  canvas.addEventListener('mousemove', function (event) {
    var i = nodeAt(event);
    if (i < 0) {
      tooltip.hidden = true;
      return;
    }
    tooltip.textContent = describe(i);
    tooltip.hidden = false;
    var left = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 4);
    tooltip.style.left = Math.max(left, 0) + 'px';
    tooltip.style.top = event.clientY + 16 + 'px';
  });
  canvas.addEventListener('mouseleave', function () { tooltip.hidden = true; });
  canvas.addEventListener('click', function (event) {
    var i = nodeAt(event);
    if (i >= 0) zoom(i);
  });
  document.getElementById('reset').addEventListener('click', function () { zoom(0); });
  document.addEventListener('keydown', function (event) { if (event.key === 'Escape') zoom(0); });

  function zoom(i) {
    view = { node: i, x0: x[i], x1: x[i] + w[i] };
    render();
  }

  search.addEventListener('input', function () {
    var term = search.value.toLowerCase();
    if (!term) {
      matches = null;
      status.textContent = summary;
      render();
      return;
    }
    var byName = names.map(function (s) { return s.toLowerCase().indexOf(term) >= 0; });
    matches = new Uint8Array(n);
    var matched = 0;
    var until = -1;
    for (var j = 0; j < n; j++) {
      if (nameOf[j] >= 0 && byName[nameOf[j]]) {
        matches[j] = 1;
        // Count a matching subtree once, not again for matches nested in it.
        if (j >= until) {
          matched += diff ? tTotal(j) : w[j];
          until = end[j];
        }
      }
    }
    status.textContent = 'Matched ' + pct(frac(matched, tSamples)) + ' of ' + (diff ? 'target ' : '') + 'samples';
    render();
  });

  var summary = diff
    ? 'base ' + bSamples + ' samples, target ' + tSamples + ' samples'
    : tSamples + ' samples';
  status.textContent = n > 1 ? summary : 'No samples';
  window.addEventListener('resize', render);
  render();
})();
`;
