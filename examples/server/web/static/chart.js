// chart.js draws the dashboard's charts as SVG, with no library: time series
// (lines or stacked bars) with axes, a legend, and a tooltip that follows the
// pointer or the arrow keys; and ranked bar lists. It exports window.HGChart.
'use strict';
(function () {
  const NS = 'http://www.w3.org/2000/svg';
  const MIN = 60e3, HOUR = 60 * MIN, DAY = 24 * HOUR;

  // h builds an HTML element: h('li', {class: 'x'}, 'text', child...).
  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) e.append(c);
    }
    return e;
  }

  // s builds an SVG element.
  function s(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (parent) parent.append(e);
    return e;
  }

  // niceTicks returns about n round values covering [lo, hi]; whole
  // numbers only when integer is set.
  function niceTicks(lo, hi, n, integer) {
    if (hi <= lo) hi = lo + 1;
    const raw = (hi - lo) / n;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    let step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * mag;
    if (integer) step = Math.max(1, Math.round(step));
    const start = Math.floor(lo / step) * step, end = Math.ceil(hi / step) * step;
    const ticks = [];
    for (let v = start, i = 0; v <= end + step / 2 && i < 50; v += step, i++) ticks.push(Math.abs(v) < step / 1e6 ? 0 : v);
    return ticks;
  }

  const timeFmt = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit'});
  const dayFmt = new Intl.DateTimeFormat(undefined, {month: 'short', day: 'numeric'});
  const fullFmt = new Intl.DateTimeFormat(undefined, {month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit'});

  // tickEvery picks the spacing of the time axis' labels for a span and a
  // number of labels that fit.
  function tickEvery(span, fit) {
    const steps = [MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY];
    for (const st of steps) if (span / st <= fit) return st;
    return 30 * DAY;
  }

  // bucketLabel formats a bucket's time range for the tooltip.
  function bucketLabel(t, step) {
    if (step >= DAY) return dayFmt.format(t);
    return fullFmt.format(t) + ' – ' + timeFmt.format(t + step);
  }

  const charts = new WeakMap(); // figure → options of its last draw
  const resize = new ResizeObserver(entries => {
    for (const en of entries) {
      const fig = en.target.closest('figure');
      const o = fig && charts.get(fig);
      if (o && o.width !== Math.round(en.contentRect.width)) draw(fig, o);
    }
  });

  // plotOf returns the figure's .plot element, emptied.
  function plotOf(fig) {
    const plot = fig.querySelector('.plot');
    plot.replaceChildren();
    return plot;
  }

  // message shows a state (loading, empty, error) in place of a chart.
  function message(fig, text, kind) {
    charts.delete(fig);
    fig.dataset.state = kind;
    const plot = plotOf(fig);
    plot.append(h('div', {class: 'placeholder ' + kind, text}));
    const leg = fig.querySelector('.legend');
    if (leg) leg.remove();
  }

  // timeSeries draws o.series ([{name, color, values}], one value per bucket
  // of o.step ms from o.from) as lines (o.kind 'line') or stacked bars
  // ('bars'); o.format formats values, o.integer asks for whole-number
  // ticks; o.empty is the empty state's text.
  function timeSeries(fig, o) {
    let sum = 0;
    for (const se of o.series) for (const v of se.values) sum += v;
    fig.dataset.sum = String(Math.round(sum * 1e6) / 1e6);
    fig.dataset.buckets = String(o.series.reduce((n, se) => n + se.values.filter(v => v !== 0).length, 0));
    if (!o.series.some(se => se.values.some(v => v !== 0))) {
      message(fig, o.empty || 'No data in this range yet.', 'empty');
      return;
    }
    charts.set(fig, o);
    draw(fig, o);
    resize.observe(fig.querySelector('.plot'));
  }

  function draw(fig, o) {
    const plot = plotOf(fig);
    fig.dataset.state = 'ready';
    const width = Math.max(260, Math.round(plot.clientWidth || 600));
    o.width = width;
    const height = width < 480 ? 190 : 230;
    const n = o.series[0].values.length;
    const stacked = o.kind === 'bars';
    let lo = 0, hi = 0;
    for (let i = 0; i < n; i++) {
      let pos = 0, neg = 0;
      for (const se of o.series) {
        const v = se.values[i];
        if (stacked) { if (v > 0) pos += v; else neg += v; } else { hi = Math.max(hi, v); lo = Math.min(lo, v); }
      }
      if (stacked) { hi = Math.max(hi, pos); lo = Math.min(lo, neg); }
    }
    const ticks = niceTicks(lo, hi, height < 200 ? 3 : 4, o.integer);
    const y0 = ticks[0], y1 = ticks[ticks.length - 1];
    const labelW = Math.max(...ticks.map(t => o.format(t, true).length)) * 7 + 10;
    const m = {l: labelW, r: 10, t: 10, b: 24};
    const pw = width - m.l - m.r, ph = height - m.t - m.b;
    const bw = pw / n;
    const x = i => m.l + (i + 0.5) * bw;
    const y = v => m.t + ph - (v - y0) / (y1 - y0) * ph;

    const svg = s('svg', {viewBox: `0 0 ${width} ${height}`, width, height, class: 'ts', role: 'img', tabindex: '0'});
    const total = o.series.map(se => se.name + ' ' + o.format(se.values.reduce((a, b) => a + b, 0))).join(', ');
    svg.setAttribute('aria-label', `${fig.querySelector('figcaption').textContent}, ${n} buckets: ${total}. Arrow keys step through the buckets.`);
    const grid = s('g', {class: 'grid'}, svg);
    for (const t of ticks) {
      s('line', {x1: m.l, x2: width - m.r, y1: y(t), y2: y(t), class: t === 0 ? 'zero' : ''}, grid);
      const lab = s('text', {x: m.l - 6, y: y(t) + 4, 'text-anchor': 'end'}, grid);
      lab.textContent = o.format(t, true);
    }
    const span = n * o.step;
    const every = Math.max(tickEvery(span, Math.max(2, Math.floor(pw / 72))), o.step);
    const axis = s('g', {class: 'axis'}, svg);
    s('line', {x1: m.l, x2: width - m.r, y1: m.t + ph, y2: m.t + ph}, axis);
    let lastRight = -1e9;
    for (let i = 0; i < n; i++) {
      const t = o.from + i * o.step;
      const local = t - new Date(t).getTimezoneOffset() * MIN;
      if (((local % every) + every) % every >= o.step) continue;
      const xi = m.l + i * bw;
      const text = every >= DAY ? dayFmt.format(t) : timeFmt.format(t);
      const tw = text.length * 6.5; // about 11 px glyphs
      const anchor = xi + tw / 2 > width ? 'end' : 'middle';
      const left = anchor === 'end' ? xi - tw : xi - tw / 2;
      if (left < lastRight + 10 || left < 0) continue;
      lastRight = left + tw;
      s('line', {x1: xi, x2: xi, y1: m.t + ph, y2: m.t + ph + 4}, axis);
      s('text', {x: xi, y: height - 6, 'text-anchor': anchor}, axis).textContent = text;
    }

    const marks = s('g', {class: 'marks'}, svg);
    if (stacked) {
      const w = Math.max(1, bw * 0.72);
      for (let i = 0; i < n; i++) {
        let pos = 0, neg = 0;
        for (const se of o.series) {
          const v = se.values[i];
          if (!v) continue;
          const base = v > 0 ? pos : neg;
          const top = base + v;
          if (v > 0) pos = top; else neg = top;
          s('rect', {x: x(i) - w / 2, y: Math.min(y(base), y(top)), width: w, height: Math.max(1, Math.abs(y(top) - y(base))), fill: se.color, rx: Math.min(2, w / 4)}, marks);
        }
      }
    } else {
      for (const se of o.series) {
        let d = '';
        se.values.forEach((v, i) => { d += (i ? 'L' : 'M') + x(i).toFixed(1) + ' ' + y(v).toFixed(1); });
        if (n > 1) {
          s('path', {d: d + `L${x(n - 1).toFixed(1)} ${y(0)}L${x(0).toFixed(1)} ${y(0)}Z`, fill: se.color, class: 'area'}, marks);
        }
        s('path', {d, stroke: se.color, class: 'line'}, marks);
        se.values.forEach((v, i) => {
          if (v !== 0 && (n <= 72 || se.values[i - 1] === 0 || se.values[i + 1] === 0)) s('circle', {cx: x(i), cy: y(v), r: 2.5, fill: se.color}, marks);
        });
      }
    }

    // The tooltip: follows the pointer, or the arrow keys when focused.
    const guide = s('line', {class: 'guide', y1: m.t, y2: m.t + ph, visibility: 'hidden'}, svg);
    const hit = s('rect', {x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent'}, svg);
    const tip = h('div', {class: 'tip', hidden: true, 'aria-hidden': 'true'});
    let cur = -1;
    const show = i => {
      cur = Math.max(0, Math.min(n - 1, i));
      const t = o.from + cur * o.step;
      guide.setAttribute('x1', x(cur));
      guide.setAttribute('x2', x(cur));
      guide.setAttribute('visibility', 'visible');
      tip.replaceChildren(h('div', {class: 'tip-time', text: bucketLabel(t, o.step)}),
        ...o.series.map(se => h('div', {class: 'tip-row'}, h('span', {class: 'sw', 'data-color': se.color}), se.name + ': ', h('b', {text: o.format(se.values[cur])}))));
      for (const sw of tip.querySelectorAll('.sw')) sw.style.background = sw.dataset.color;
      tip.hidden = false;
      const left = x(cur) / width * plot.clientWidth;
      tip.style.left = Math.min(Math.max(0, left - tip.offsetWidth / 2), plot.clientWidth - tip.offsetWidth) + 'px';
      live.textContent = tip.textContent;
    };
    const hide = () => { guide.setAttribute('visibility', 'hidden'); tip.hidden = true; };
    hit.addEventListener('pointermove', ev => {
      const r = svg.getBoundingClientRect();
      show(Math.floor(((ev.clientX - r.left) / r.width * width - m.l) / bw));
    });
    hit.addEventListener('pointerleave', hide);
    svg.addEventListener('blur', hide);
    svg.addEventListener('keydown', ev => {
      const last = (() => { for (let i = n - 1; i >= 0; i--) if (o.series.some(se => se.values[i] !== 0)) return i; return n - 1; })();
      const moves = {ArrowLeft: cur < 0 ? last : cur - 1, ArrowRight: cur < 0 ? last : cur + 1, Home: 0, End: n - 1};
      if (ev.key in moves) { show(moves[ev.key]); ev.preventDefault(); } else if (ev.key === 'Escape') hide();
    });
    const live = h('div', {class: 'sr-only', 'aria-live': 'polite'});
    plot.append(svg, tip, live);

    let leg = fig.querySelector('.legend');
    if (!leg) { leg = h('ul', {class: 'legend'}); fig.append(leg); }
    leg.replaceChildren(...o.series.map(se => {
      const sw = h('span', {class: 'sw', 'aria-hidden': 'true'});
      sw.style.background = se.color;
      return h('li', {}, sw, se.name, ' ', h('b', {text: o.format(se.values.reduce((a, b) => a + b, 0))}));
    }));
  }

  // bars draws a ranked list of items ([{label, value}]) as horizontal bars:
  // the top max items and the rest summed as "other".
  function bars(fig, items, format, empty, max) {
    max = max || 8;
    items = items.filter(it => it.value !== 0).sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
    const sum = items.reduce((a, it) => a + it.value, 0);
    fig.dataset.sum = String(sum);
    if (items.length === 0) {
      message(fig, empty || 'No data in this range yet.', 'empty');
      return;
    }
    fig.dataset.state = 'ready';
    if (items.length > max) {
      const rest = items.splice(max - 1);
      items.push({label: `${rest.length} others`, value: rest.reduce((a, it) => a + it.value, 0), other: true});
    }
    const top = Math.max(...items.map(it => it.value));
    const plot = plotOf(fig);
    const list = h('ol', {class: 'barlist'});
    for (const it of items) {
      const fill = h('span', {class: 'fill' + (it.other ? ' other' : '')});
      fill.style.width = Math.max(1, it.value / top * 100) + '%';
      const share = Math.round(it.value / sum * 100);
      list.append(h('li', {'data-label': it.label, 'data-value': String(it.value)},
        h('span', {class: 'bl-label', title: it.label, text: it.label}),
        h('span', {class: 'bl-track', 'aria-hidden': 'true'}, fill),
        h('span', {class: 'bl-value'}, format(it.value), h('small', {text: ` ${share}%`}))));
    }
    plot.append(list);
  }

  window.HGChart = {timeSeries, bars, message, h, niceTicks};
})();
