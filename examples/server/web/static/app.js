// app.js is the dashboard: sign-in, the merchant view over GET /v1/metrics,
// the test events form over POST /v1/events, and the operator view over
// GET /metrics and the admin API. The token lives in sessionStorage only and
// travels in the Authorization header, never in a URL.
'use strict';
(function () {
  const {h, bars, timeSeries, message} = window.HGChart;
  const $ = id => document.getElementById(id);
  // put replaces el's children with the given ones, skipping null.
  const put = (el, ...kids) => el.replaceChildren(...kids.filter(k => k !== null && k !== undefined));
  const TOKEN_KEY = 'hourglass.token';
  const REFRESH_MS = 5000;
  const MIN = 60e3, HOUR = 60 * MIN, DAY = 24 * HOUR;
  // RANGES: each range's length, step and name of the previous period.
  const RANGES = {
    '1h': {ms: HOUR, step: '1m', stepMs: MIN, prev: 'previous hour'},
    '6h': {ms: 6 * HOUR, step: '5m', stepMs: 5 * MIN, prev: 'previous 6 hours'},
    '24h': {ms: DAY, step: '15m', stepMs: 15 * MIN, prev: 'previous 24 hours'},
    '7d': {ms: 7 * DAY, step: '1h', stepMs: HOUR, prev: 'previous 7 days'},
    '30d': {ms: 30 * DAY, step: '24h', stepMs: DAY, prev: 'previous 30 days'},
  };
  const PALETTE = ['#4f46e5', '#0891b2', '#d97706', '#db2777', '#059669', '#7c3aed', '#dc2626', '#0d9488', '#65a30d', '#475569'];
  const STATUS_COLORS = {paid: '#059669', pending: '#d97706', failed: '#dc2626', cancelled: '#94a3b8'};

  // session: who is signed in. gen counts sign-ins and range changes, so
  // that an answer to an older request is dropped.
  const session = {token: '', kind: '', merchant: '', timer: 0, busy: false, gen: 0, pausedUntil: 0};

  // ApiError is an HTTP error answer (status 0: the server was unreachable).
  class ApiError extends Error {
    constructor(status, message, retryAfter) {
      super(message);
      this.status = status;
      this.retryAfter = retryAfter;
    }
  }

  // call sends a request with the session's token (or token) and returns
  // the body's text, or throws an ApiError.
  async function call(method, path, body, token) {
    const headers = {Authorization: 'Bearer ' + (token || session.token)};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {method, headers, body, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer'});
    } catch (e) {
      throw new ApiError(0, e.message, 0);
    }
    const text = await res.text();
    if (!res.ok) {
      let msg = text.trim();
      try { const j = JSON.parse(text); msg = j.error || j.message || msg; } catch (_) { /* not JSON */ }
      throw new ApiError(res.status, msg || res.statusText, Number(res.headers.get('Retry-After')) || 0);
    }
    return text;
  }

  // describe turns an error into a sentence for the page.
  function describe(err) {
    if (!(err instanceof ApiError)) return 'Unexpected error: ' + err.message;
    const s = err.status, m = err.message;
    const retry = err.retryAfter ? ` The page tries again in ${err.retryAfter} s.` : '';
    if (s === 0) return `Cannot reach the server (${m}). Is it running?`;
    if (s === 401) return `The server refused the token (401 Unauthorized): ${m}.`;
    if (s === 403) return `Not allowed (403 Forbidden): ${m}.`;
    if (s === 404) return `Not found (404): ${m}.`;
    if (s === 429) return `Too many requests (429): ${m}.${retry}`;
    if (s >= 500) return `The server could not answer (${s}): ${m}.${retry}`;
    return `The server refused the request (${s}): ${m}.`;
  }

  function showError(id, err) {
    const e = $(id);
    if (!err) { e.hidden = true; e.textContent = ''; return; }
    e.textContent = typeof err === 'string' ? err : describe(err);
    e.hidden = false;
    if (err.retryAfter) session.pausedUntil = Date.now() + err.retryAfter * 1000;
  }

  // loaded marks a view's successful refresh: no error, the time in its
  // status line.
  function loaded(errorId, statusId, prefix) {
    showError(errorId, null);
    $(statusId).textContent = prefix + clock.format(new Date());
    document.body.dataset.state = 'ready';
  }

  // failed shows a view's refresh error and reports whether the view is
  // still the one that asked (a 401 signs out: the token was revoked).
  function failed(err, gen, errorId, statusId) {
    if (gen !== session.gen) return false;
    if (err.status === 401) {
      signOut();
      showError('signin-error', describe(err) + ' Sign in again.');
      return false;
    }
    showError(errorId, err);
    $(statusId).textContent = 'Not updated: see the error below.';
    document.body.dataset.state = 'error';
    return true;
  }

  // metric reads GET /v1/metrics/{name} with params.
  async function metric(name, params, token) {
    const q = new URLSearchParams(params);
    return JSON.parse(await call('GET', `/v1/metrics/${name}?${q}`, undefined, token));
  }

  // --- formatting ------------------------------------------------------------

  const intFmt = new Intl.NumberFormat(undefined, {maximumFractionDigits: 0});
  const numFmt = new Intl.NumberFormat(undefined, {maximumFractionDigits: 2});
  const compactFmt = new Intl.NumberFormat(undefined, {notation: 'compact', maximumFractionDigits: 1});
  const moneyFmts = {};
  function money(cur, v, compact) {
    const key = cur + (compact ? '/c' : '');
    if (!moneyFmts[key]) {
      try {
        moneyFmts[key] = new Intl.NumberFormat(undefined, compact ? {style: 'currency', currency: cur, notation: 'compact', maximumFractionDigits: 1} : {style: 'currency', currency: cur});
      } catch (_) {
        moneyFmts[key] = {format: x => numFmt.format(x) + ' ' + cur};
      }
    }
    return moneyFmts[key].format(v);
  }
  const count = (v, axis) => (axis && Math.abs(v) >= 1e4 ? compactFmt : numFmt).format(v);
  const clock = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit'});

  function duration(sec) {
    if (!isFinite(sec)) return '–';
    if (sec < 1) return `${Math.round(sec * 1000)} ms`;
    if (sec < 60) return `${numFmt.format(Math.round(sec * 10) / 10)} s`;
    const mi = Math.floor(sec / 60), se = Math.round(sec % 60);
    if (mi < 60) return se ? `${mi}m ${String(se).padStart(2, '0')}s` : `${mi}m`;
    return mi % 60 ? `${Math.floor(mi / 60)}h ${String(mi % 60).padStart(2, '0')}m` : `${Math.floor(mi / 60)}h`;
  }

  function bytes(b) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return `${numFmt.format(i ? Math.round(b * 10) / 10 : b)} ${u[i]}`;
  }

  // change describes cur against prev: "▲ 12 %", "new", "no change"; the
  // title gives the previous figure.
  function change(cur, prev, label) {
    let text, dir = 'flat';
    if (prev === 0) {
      text = cur === 0 ? 'no change' : 'new';
      if (cur > 0) dir = 'up';
    } else {
      const p = (cur - prev) / Math.abs(prev) * 100;
      dir = p > 0.5 ? 'up' : p < -0.5 ? 'down' : 'flat';
      text = (dir === 'up' ? '▲ ' : dir === 'down' ? '▼ ' : '') + intFmt.format(Math.abs(p)) + ' %';
    }
    return h('span', {class: 'change ' + dir, title: `${label}: ${numFmt.format(prev)}`, 'aria-label': `${text} vs ${label}`, text});
  }

  // --- sign-in ---------------------------------------------------------------

  // signIn finds out whether token is a merchant's (GET /v1/metrics answers)
  // or the admin token (GET /v1/admin/reprocess answers) and opens its view.
  async function signIn(token) {
    showError('signin-error', null);
    $('signin-button').disabled = true;
    document.body.dataset.state = 'signing-in';
    try {
      let kind, merchant = '';
      try {
        const r = await metric('orders', {from: 'now-1m', step: '1m', group_by: ''}, token);
        kind = 'merchant';
        merchant = r.merchant;
      } catch (e) {
        if (e.status !== 401) throw e;
        try {
          await call('GET', '/v1/admin/reprocess', undefined, token);
          kind = 'admin';
        } catch (e2) {
          if (e2.status === 401) throw new Error('This token is neither a merchant token nor the admin token: the server answered 401 Unauthorized. Check that you pasted all of it.');
          throw e2;
        }
      }
      sessionStorage.setItem(TOKEN_KEY, token);
      Object.assign(session, {token, kind, merchant, gen: session.gen + 1, pausedUntil: 0});
      $('token').value = '';
      open();
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      document.body.dataset.state = 'signed-out';
      showError('signin-error', e instanceof ApiError ? describe(e) : e.message);
      $('token').select();
    } finally {
      $('signin-button').disabled = false;
    }
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    clearInterval(session.timer);
    Object.assign(session, {token: '', kind: '', merchant: '', timer: 0, gen: session.gen + 1});
    resetMerchant();
    for (const id of ['merchant', 'operator', 'who']) $(id).hidden = true;
    $('signin').hidden = false;
    $('view-name').textContent = 'dashboard';
    document.body.dataset.state = 'signed-out';
    showError('merchant-error', null);
    showError('operator-error', null);
    $('send-result').textContent = '';
    $('token').focus();
  }

  // open shows the signed-in view and starts its refresh timer.
  function open() {
    $('signin').hidden = true;
    $('who').hidden = false;
    clearInterval(session.timer);
    if (session.kind === 'merchant') {
      $('who-name').textContent = 'Merchant ' + session.merchant;
      $('view-name').textContent = 'merchant dashboard';
      $('merchant').hidden = false;
      $('merchant-h').textContent = 'Business overview · ' + session.merchant;
      document.body.dataset.state = 'loading';
      loadMerchant();
      session.timer = setInterval(() => { if (isLive()) loadMerchant(); }, REFRESH_MS);
    } else {
      $('who-name').textContent = 'Operator (admin token)';
      $('view-name').textContent = 'operator view';
      $('operator').hidden = false;
      document.body.dataset.state = 'loading';
      loadOperator();
      session.timer = setInterval(loadOperator, REFRESH_MS);
    }
    document.querySelector('#main').focus({preventScroll: true});
  }

  // --- the merchant view -----------------------------------------------------

  const isLive = () => $('range').value === '1h' && $('live').checked;

  function resetMerchant() {
    for (const k of document.querySelectorAll('.kpi .kpi-body')) put(k, h('span', {class: 'skeleton', text: 'Loading…'}));
    for (const f of document.querySelectorAll('#merchant figure')) {
      message(f, 'Loading…', 'loading');
      delete f.dataset.sum;
    }
    $('status').textContent = 'Loading…';
  }

  // split cuts the series of a metric read over [prev, to) into the current
  // period [from, to), one value per bucket of stepMs, and the previous
  // period's total; series are keyed by the label key ('' merges all).
  function split(resp, key, from, to, stepMs) {
    const n = Math.round((to - from) / stepMs);
    const out = new Map();
    for (const se of resp.series) {
      const name = key ? (se.labels[key] || '') : '';
      if (!out.has(name)) out.set(name, {name, values: new Float64Array(n), total: 0, prev: 0});
      const o = out.get(name);
      for (const p of se.points) {
        const t = Date.parse(p.time);
        if (t >= from) {
          const i = Math.floor((t - from) / stepMs);
          if (i < n) { o.values[i] += p.value; o.total += p.value; }
        } else o.prev += p.value;
      }
    }
    return [...out.values()];
  }

  const sumOf = (list, f) => list.reduce((a, x) => a + x[f], 0);

  // loadMerchant reads every figure of the selected range and draws them.
  async function loadMerchant() {
    if (session.busy || Date.now() < session.pausedUntil || document.hidden && isLive()) return;
    const gen = session.gen;
    const r = RANGES[$('range').value];
    const to = Math.floor(Date.now() / r.stepMs) * r.stepMs + r.stepMs;
    const from = to - r.ms, prev = from - r.ms;
    const both = {from: prev, to, step: r.step};
    const cur = {from, to, step: (r.ms / MIN) + 'm'};
    session.busy = true;
    $('merchant').setAttribute('aria-busy', 'true');
    try {
      const [rev, ord, ref, views, country, device] = await Promise.all([
        metric('revenue', {...both, group_by: 'currency'}),
        metric('orders', {...both, group_by: 'status'}),
        metric('refunds', {...both, group_by: ''}),
        metric('views', {...both, group_by: 'path'}),
        metric('orders', {...cur, group_by: 'country'}),
        metric('orders', {...cur, group_by: 'device'}),
      ]);
      if (gen !== session.gen) return;
      const merchant = [rev, ord, ref, views, country, device].map(x => x.merchant);
      if (merchant.some(m => m !== session.merchant)) throw new Error('an answer was for another merchant');
      draw({r, from, to, rev: split(rev, 'currency', from, to, r.stepMs), ord: split(ord, 'status', from, to, r.stepMs),
        ref: split(ref, '', from, to, r.stepMs), views: split(views, 'path', from, to, r.stepMs),
        country: split(country, 'country', from, to, r.ms), device: split(device, 'device', from, to, r.ms)});
      loaded('merchant-error', 'status', isLive() ? 'Live: refreshes every 5 s · updated ' : 'Updated ');
      $('live-dot').classList.toggle('live', isLive());
    } catch (e) {
      if (!failed(e, gen, 'merchant-error', 'status')) return;
      for (const f of document.querySelectorAll('#merchant figure[data-state="loading"]')) message(f, 'Could not load this chart.', 'failed');
      for (const k of document.querySelectorAll('.kpi-body')) if (k.querySelector('.skeleton')) put(k, h('div', {class: 'kpi-value', text: '–'}), h('div', {class: 'kpi-sub', text: 'not loaded'}));
    } finally {
      session.busy = false;
      $('merchant').removeAttribute('aria-busy');
    }
  }

  const color = (i) => PALETTE[i % PALETTE.length];
  const labelOr = (name, none) => name === '' ? none : name;

  function draw(d) {
    const {r, from, to} = d;
    const range = $('range').selectedOptions[0].textContent.toLowerCase();
    for (const el of document.querySelectorAll('#merchant figure, #merchant .kpis')) {
      el.dataset.from = String(from);
      el.dataset.to = String(to);
    }
    $('breakdown-range').textContent = '· ' + range;

    // KPIs
    const revs = d.rev.filter(x => x.total !== 0 || x.prev !== 0).sort((a, b) => b.total - a.total || a.name.localeCompare(b.name));
    const revBody = document.querySelector('#kpi-revenue .kpi-body');
    if (revs.length === 0) put(revBody, h('div', {class: 'kpi-value', 'data-value': '0', text: '–'}), h('div', {class: 'kpi-sub', text: 'No revenue in this range'}));
    else put(revBody, ...revs.slice(0, 4).map(x => h('div', {class: 'kpi-row', 'data-currency': x.name, 'data-value': String(x.total)},
      h('span', {class: revs.length > 1 ? 'kpi-value small' : 'kpi-value', text: money(x.name, x.total)}), change(x.total, x.prev, r.prev))),
    h('div', {class: 'kpi-sub', text: 'vs ' + r.prev + (revs.length > 4 ? ` · ${revs.length - 4} more currencies` : '')}));

    const orders = sumOf(d.ord, 'total'), refunds = sumOf(d.ref, 'total'), views = sumOf(d.views, 'total');
    const statusLine = d.ord.filter(x => x.total).sort((a, b) => b.total - a.total).map(x => `${labelOr(x.name, 'no status')} ${intFmt.format(x.total)}`).join(' · ');
    kpi('kpi-orders', orders, sumOf(d.ord, 'prev'), r.prev, statusLine || 'No orders in this range');
    kpi('kpi-refunds', refunds, sumOf(d.ref, 'prev'), r.prev, orders ? `${numFmt.format(refunds / orders * 100)} % of orders` : 'Refund events in this range');
    kpi('kpi-views', views, sumOf(d.views, 'prev'), r.prev, views ? `${numFmt.format(orders / views * 100)} % conversion to orders` : 'No page views in this range');

    // Charts
    const base = {from, step: r.stepMs};
    timeSeries($('chart-revenue'), {...base, kind: 'line', empty: 'No revenue in this range yet: send a test order below.',
      series: d.rev.filter(x => x.total !== 0).sort((a, b) => b.total - a.total).slice(0, 6).map((x, i) => ({name: x.name, color: color(i), values: x.values})),
      format: (v, axis) => revs.length === 1 ? money(revs[0].name, v, axis) : count(v, axis)});
    timeSeries($('chart-orders'), {...base, kind: 'bars', empty: 'No orders in this range yet.',
      series: d.ord.filter(x => x.total).sort((a, b) => b.total - a.total).map((x, i) => ({name: labelOr(x.name, 'no status'), color: STATUS_COLORS[x.name] || color(i + 5), values: x.values})),
      format: count, integer: true});
    timeSeries($('chart-refunds'), {...base, kind: 'bars', empty: 'No refunds in this range.', integer: true,
      series: d.ref.map(x => ({name: 'refunds', color: '#db2777', values: x.values})), format: count});
    const viewValues = new Float64Array(Math.round(r.ms / r.stepMs));
    for (const x of d.views) x.values.forEach((v, i) => { viewValues[i] += v; });
    timeSeries($('chart-views'), {...base, kind: 'line', empty: 'No page views in this range yet.',
      series: [{name: 'views', color: '#0891b2', values: viewValues}], format: count, integer: true});

    // Breakdowns
    bars($('bars-path'), d.views.map(x => ({label: labelOr(x.name, '(no path)'), value: x.total})), v => intFmt.format(v), 'No page views in this range.');
    bars($('bars-country'), d.country.map(x => ({label: labelOr(x.name, '(unknown)'), value: x.total})), v => intFmt.format(v), 'No orders in this range.');
    bars($('bars-device'), d.device.map(x => ({label: labelOr(x.name, '(unknown)'), value: x.total})), v => intFmt.format(v), 'No orders in this range.');
  }

  function kpi(id, value, prev, prevLabel, sub) {
    put($(id).querySelector('.kpi-body'),
      h('div', {class: 'kpi-row', 'data-value': String(value)}, h('span', {class: 'kpi-value', text: intFmt.format(value)}), change(value, prev, prevLabel)),
      h('div', {class: 'kpi-sub', text: `vs ${prevLabel}`}),
      h('div', {class: 'kpi-sub', text: sub}));
  }

  // --- the test events form ----------------------------------------------------

  function syncEventFields() {
    const type = $('ev-type').value;
    for (const f of document.querySelectorAll('#send-form [data-for]')) f.hidden = !f.dataset.for.split(' ').includes(type);
  }

  async function sendEvents(ev) {
    ev.preventDefault();
    const type = $('ev-type').value;
    const e = {type};
    if (type !== 'page_view') {
      e.amount = Number($('ev-amount').value);
      e.currency = $('ev-currency').value.trim().toUpperCase();
    }
    if (type === 'order') e.status = $('ev-status').value;
    if (type === 'page_view') e.path = $('ev-path').value.trim();
    const country = $('ev-country').value.trim().toUpperCase();
    if (country) e.country = country;
    if ($('ev-device').value) e.device = $('ev-device').value;
    const n = Math.max(1, Math.min(100, Math.floor(Number($('ev-count').value) || 1)));
    const out = $('send-result');
    out.className = '';
    out.textContent = 'Sending…';
    $('send-button').disabled = true;
    try {
      const r = JSON.parse(await call('POST', '/v1/events', JSON.stringify(Array.from({length: n}, () => e))));
      out.className = 'ok';
      out.textContent = `Accepted ${r.accepted} event${r.accepted === 1 ? '' : 's'} at ${clock.format(new Date())}.`;
      session.pausedUntil = 0;
      loadMerchant();
    } catch (err) {
      out.className = 'bad';
      out.textContent = describe(err);
    } finally {
      $('send-button').disabled = false;
    }
  }

  // --- the operator view -------------------------------------------------------

  // parseProm reads the Prometheus text format into name → [{labels, value}].
  function parseProm(text) {
    const out = new Map();
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
      if (!out.has(m[1])) out.set(m[1], []);
      out.get(m[1]).push({labels, value: Number(m[3])});
    }
    return out;
  }

  // flushLog keeps the flushes the operator view saw happen (from the
  // counters' changes between two reads), newest first.
  const flushLog = [];
  let lastFlushes = -1;

  async function loadOperator() {
    if (session.busy || Date.now() < session.pausedUntil) return;
    const gen = session.gen;
    session.busy = true;
    try {
      const [promText, jobsText, quarantine] = await Promise.all([
        call('GET', '/metrics'),
        call('GET', '/v1/admin/reprocess'),
        call('GET', '/v1/admin/quarantine').then(t => ({data: JSON.parse(t)}), e => {
          if (e.status === 404 || e.status === 405 || e.status === 501) return {missing: e.status};
          throw e;
        }),
      ]);
      if (gen !== session.gen) return;
      const pm = parseProm(promText);
      const val = (name, pred) => {
        const l = (pm.get(name) || []).filter(x => !pred || pred(x.labels));
        return l.length ? l.reduce((a, x) => a + x.value, 0) : NaN;
      };
      drawOperator(pm, val, JSON.parse(jobsText), quarantine);
      loaded('operator-error', 'op-status', 'Updated ');
    } catch (e) {
      failed(e, gen, 'operator-error', 'op-status');
    } finally {
      session.busy = false;
    }
  }

  // gauge is a labelled bar of value against bound, coloured by how close
  // it is (a progress bar when progress is set).
  function gauge(label, value, bound, text, progress) {
    const pct = bound > 0 ? Math.min(100, value / bound * 100) : 0;
    const fill = h('span', {class: 'fill'});
    fill.style.width = pct + '%';
    const level = progress ? 'progress' : pct >= 90 ? 'bad' : pct >= 70 ? 'warn' : 'ok';
    return h('div', {class: 'gauge-wrap'},
      h('div', {class: 'gauge ' + level, role: 'meter', 'aria-label': label, 'aria-valuemin': '0', 'aria-valuemax': String(bound || 0), 'aria-valuenow': String(value), 'aria-valuetext': text}, fill),
      h('div', {class: 'gauge-text', text}));
  }

  const stat = (label, value, cls) => h('div', {class: 'stat' + (cls ? ' ' + cls : '')}, h('dt', {text: label}), h('dd', {text: value}));
  const body = id => $(id).querySelector('.op-body');

  function drawOperator(pm, val, jobs, quarantine) {
    const lag = val('hourglass_writeback_oldest_unflushed_seconds');
    const budget = val('hourglass_flush_budget_seconds');
    const interval = val('hourglass_flush_interval_seconds');
    const bound = (isFinite(interval) ? interval : 0) + (isFinite(budget) ? budget : 0);
    const lagBody = body('op-flushlag');
    lagBody.dataset.seconds = String(isFinite(lag) ? lag : '');
    put(lagBody,
      h('div', {class: 'big', id: 'op-lag-value', text: isFinite(lag) ? duration(lag) : '–'}),
      h('div', {class: 'kpi-sub', text: lag > 0 ? 'age of the oldest write not yet flushed' : 'nothing waits to be flushed'}),
      isFinite(interval)
        ? gauge('flush lag against its bound', lag || 0, bound, `${duration(lag || 0)} of ${duration(bound)} (flush every ${duration(interval)} + budget ${duration(budget)})`)
        : h('div', {class: 'gauge-text', text: `flush budget ${duration(budget)}`}));

    const cacheBytes = val('hourglass_writeback_cache_bytes'), maxBytes = val('hourglass_cache_max_bytes');
    put(body('op-cache'),
      h('div', {class: 'big', text: bytes(cacheBytes || 0)}),
      isFinite(maxBytes) && maxBytes > 0 ? gauge('cache size against its bound', cacheBytes, maxBytes, `${bytes(cacheBytes)} of ${bytes(maxBytes)} bound`) : h('div', {class: 'kpi-sub', text: 'bound not exported'}),
      h('dl', {class: 'stats'}, stat('points', intFmt.format(val('hourglass_writeback_cache_points') || 0)),
        stat('cells', intFmt.format(val('hourglass_writeback_cache_cells') || 0)),
        stat('sealed, waiting', intFmt.format(val('hourglass_writeback_sealed_generations') || 0)),
        stat('refused (cache full)', intFmt.format(val('hourglass_writeback_writes_back_pressure_total') || 0))));

    const flushes = val('hourglass_writeback_flushes_total') || 0;
    const lastDur = val('hourglass_writeback_last_flush_seconds'), lastCells = val('hourglass_writeback_last_flush_cells');
    if (lastFlushes >= 0 && flushes > lastFlushes) flushLog.unshift({at: new Date(), n: flushes - lastFlushes, dur: lastDur, cells: lastCells});
    flushLog.splice(5);
    lastFlushes = flushes;
    put(body('op-flushes'),
      h('div', {class: 'big', text: intFmt.format(flushes)}),
      h('div', {class: 'kpi-sub', text: 'flushes since the server started'}),
      flushes > 0 ? gauge('last flush duration against the budget', lastDur, budget, `last took ${duration(lastDur)} of the ${duration(budget)} budget, ${intFmt.format(lastCells)} cells`) : null,
      h('dl', {class: 'stats'}, stat('over budget', intFmt.format(val('hourglass_writeback_flush_budget_overruns_total') || 0)),
        stat('store speed', `${intFmt.format(val('hourglass_writeback_store_speed_cells_per_second') || 0)} cells/s`)),
      flushLog.length ? h('ol', {class: 'log', 'aria-label': 'flushes seen on this page'}, ...flushLog.map(f => h('li', {text: `${clock.format(f.at)} · ${duration(f.dur)} · ${intFmt.format(f.cells)} cells`}))) : null);

    const storeErr = op => val('hourglass_store_errors_total', l => l.op === op) || 0;
    const flushErr = val('hourglass_writeback_flush_errors_total') || 0;
    const http5xx = val('hourglass_http_requests_total', l => /^5/.test(l.code)) || 0;
    const errs = [flushErr, storeErr('flush'), storeErr('query'), http5xx];
    put(body('op-errors'),
      h('div', {class: 'big ' + (errs.some(x => x > 0) ? 'bad' : 'good'), text: errs.some(x => x > 0) ? 'errors seen' : 'none'}),
      h('dl', {class: 'stats'}, stat('failed flushes (store or archive)', intFmt.format(flushErr), flushErr ? 'bad' : ''),
        stat('store errors: flush', intFmt.format(storeErr('flush')), storeErr('flush') ? 'bad' : ''),
        stat('store errors: query', intFmt.format(storeErr('query')), storeErr('query') ? 'bad' : ''),
        stat('HTTP 5xx answers', intFmt.format(http5xx), http5xx ? 'bad' : ''),
        stat('writes rejected (invalid)', intFmt.format(val('hourglass_writeback_writes_rejected_total') || 0))));

    // Replicas
    const names = (pm.get('hourglass_replicate_healthy') || []).map(x => x.labels.replica).sort();
    const rv = (name, rep) => val(name, l => l.replica === rep);
    const fenced = val('hourglass_replicate_fenced') === 1;
    put(body('op-replicas'), names.length === 0
      ? h('p', {class: 'muted', text: 'No replication: this server writes one store (start it with -replicas 2 to replicate).'})
      : h('p', {class: fenced ? 'error' : 'muted', text: `epoch ${intFmt.format(val('hourglass_replicate_epoch') || 0)} · promotions ${intFmt.format(val('hourglass_replicate_promotions_total') || 0)}` +
        (fenced ? ' · FENCED: a newer epoch took over; this server no longer writes' : '')}),
      names.length === 0 ? null : table(['replica', 'role', 'health', 'lag (oldest hint)', 'pending hints', 'applied seq'], names.map(n => {
        const healthy = rv('hourglass_replicate_healthy', n) === 1, stale = rv('hourglass_replicate_stale', n) === 1;
        return [n, rv('hourglass_replicate_primary', n) === 1 ? 'primary' : 'standby',
          h('span', {class: 'pill ' + (stale ? 'warn' : healthy ? 'good' : 'bad'), text: stale ? 'stale: awaits re-sync' : healthy ? 'healthy' : 'unhealthy'}),
          duration(rv('hourglass_replicate_hint_oldest_age_seconds', n) || 0),
          `${intFmt.format(rv('hourglass_replicate_hint_records', n) || 0)} (${bytes(rv('hourglass_replicate_hint_bytes', n) || 0)})`,
          intFmt.format(rv('hourglass_replicate_applied_seq', n) || 0)];
      })));

    // Reprocess jobs
    const list = jobs.jobs || [];
    put(body('op-jobs'),
      h('p', {class: 'muted', text: `Reads served by: ${jobs.current || 'live store'} · processors: ${(jobs.processors || []).join(', ')}`}),
      list.length === 0 ? h('p', {class: 'muted', text: 'No reprocess jobs (POST /v1/admin/reprocess starts one).'})
        : table(['job', 'state', 'processor', 'range', 'progress', 'ETA, error or diff'], list.map(j => {
          const pct = Math.round((j.fraction || 0) * 100);
          return [j.id + (j.current ? ' (serving)' : '') + (j.dry_run ? ' (dry run)' : ''),
            h('span', {class: 'pill ' + (j.error ? 'bad' : /done|switched|complete/.test(j.state) ? 'good' : 'warn'), text: j.state, title: j.error || ''}),
            j.processor, `${new Date(j.from).toLocaleString()} – ${new Date(j.to).toLocaleString()}`,
            gauge(`progress of job ${j.id}`, pct, 100, `${pct} % · ${intFmt.format(j.points || 0)} / ${intFmt.format(j.points_total || 0)} points`, true),
            j.error || j.eta || j.diff || '–'];
        })));

    // Quarantine (GET /v1/admin/quarantine, when the server has it)
    const q = body('op-quarantine');
    if (quarantine.missing) {
      put(q, h('p', {class: 'muted', text: `Not available: this server has no GET /v1/admin/quarantine (it answered ${quarantine.missing}).`}));
    } else {
      let rows = quarantine.data;
      if (!Array.isArray(rows)) rows = Object.values(rows || {}).find(Array.isArray) || [];
      const cols = rows.length ? Object.keys(rows[0]).slice(0, 6) : [];
      put(q, rows.length === 0 ? h('p', {class: 'muted', text: 'No quarantined cells.'})
        : table(cols, rows.slice(0, 50).map(r => cols.map(c => typeof r[c] === 'object' ? JSON.stringify(r[c]) : String(r[c])))),
      rows.length > 50 ? h('p', {class: 'muted', text: `and ${rows.length - 50} more`}) : null);
    }
  }

  function table(head, rows) {
    return h('div', {class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': head.join(', ')},
      h('table', {}, h('thead', {}, h('tr', {}, ...head.map(c => h('th', {scope: 'col', text: c})))),
        h('tbody', {}, ...rows.map(r => h('tr', {}, ...r.map(c => h('td', {}, c)))))));
  }

  async function flushNow() {
    $('op-flush').disabled = true;
    $('op-status').textContent = 'Flushing…';
    try {
      const r = JSON.parse(await call('POST', '/v1/admin/flush'));
      $('op-status').textContent = `Flushed ${intFmt.format(r.cells)} cells (${intFmt.format(r.points)} points) in ${r.duration}.`;
      showError('operator-error', null);
    } catch (e) {
      showError('operator-error', e);
    } finally {
      $('op-flush').disabled = false;
    }
    loadOperator();
  }

  // --- wiring --------------------------------------------------------------------

  function syncLive() {
    const hour = $('range').value === '1h';
    $('live').disabled = !hour;
    $('live').parentElement.title = hour ? 'Refresh the last hour every 5 seconds' : 'Live refresh is for the last hour';
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('signin-form').addEventListener('submit', ev => {
      ev.preventDefault();
      const t = $('token').value.trim();
      if (t) signIn(t);
    });
    $('sign-out').addEventListener('click', signOut);
    $('range').addEventListener('change', () => {
      session.gen++;
      session.busy = false;
      syncLive();
      resetMerchant();
      loadMerchant();
    });
    $('live').addEventListener('change', () => { syncLive(); loadMerchant(); });
    $('refresh').addEventListener('click', () => { session.pausedUntil = 0; loadMerchant(); });
    $('op-refresh').addEventListener('click', () => { session.pausedUntil = 0; loadOperator(); });
    $('op-flush').addEventListener('click', flushNow);
    $('ev-type').addEventListener('change', syncEventFields);
    $('send-form').addEventListener('submit', sendEvents);
    document.addEventListener('visibilitychange', () => { if (!document.hidden && session.kind === 'merchant' && isLive()) loadMerchant(); });
    syncEventFields();
    syncLive();
    resetMerchant();
    const saved = sessionStorage.getItem(TOKEN_KEY);
    if (saved) signIn(saved);
    else $('token').focus();
  });
})();
