// quiclb dashboard: polls /dashboard/stats (the /stats document plus the latency of the last second)
// once a second, keeps five minutes of samples in memory and draws them as plain SVG. No library, no
// innerHTML with markup (the page's Content-Security-Policy allows this script by its hash only).
'use strict';
(function () {
  const CSRF = document.querySelector('meta[name="quiclb-csrf"]').getAttribute('content');
  const POLL_MS = 1000;
  const CHART_WINDOW_S = 300;
  const SPARK_WINDOW_S = 120;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const PROTOCOLS = [['HTTP/1.1', 's1'], ['HTTP/2', 's2'], ['HTTP/3', 's3']];

  /** { t: ms since epoch (client clock), s: stats document }, oldest first. */
  const samples = [];
  /** Backend id -> the `enabled` value a button asked for, until /stats shows it. */
  const pending = new Map();

  // ---- DOM helpers ------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.append(c);
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') node.textContent = v;
      else node.setAttribute(k, String(v));
    }
    return node;
  }

  function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
  }

  // ---- numbers ----------------------------------------------------------------------------------

  function fmt(v, digits) {
    if (v === null || v === undefined || !Number.isFinite(v)) return '–';
    if (digits !== undefined) return v.toFixed(digits);
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + ' G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + ' M';
    if (a >= 1e4) return (v / 1e3).toFixed(1) + ' k';
    if (a >= 100 || Number.isInteger(v)) return String(Math.round(v));
    return v.toFixed(a >= 10 ? 1 : 2);
  }

  function duration(s) {
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }

  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

  // ---- series from samples ----------------------------------------------------------------------

  /** Per-second rate of a cumulative counter between consecutive samples: [{t, v}]. */
  function rateSeries(get, windowS) {
    const out = [];
    const from = Date.now() - windowS * 1000;
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1];
      const b = samples[i];
      if (b.t < from) continue;
      const va = get(a.s);
      const vb = get(b.s);
      const dt = (b.t - a.t) / 1000;
      out.push({ t: b.t, v: va === undefined || vb === undefined || dt <= 0 ? null : Math.max(0, vb - va) / dt });
    }
    return out;
  }

  function gaugeSeries(get, windowS) {
    const from = Date.now() - windowS * 1000;
    return samples.filter((x) => x.t >= from).map((x) => ({ t: x.t, v: num(get(x.s)) ?? null }));
  }

  /** Counter delta over the last `seconds` (or as much as there is). */
  function delta(get, seconds) {
    if (samples.length < 2) return undefined;
    const last = samples[samples.length - 1];
    let first = samples[0];
    for (const x of samples) {
      if (x.t >= last.t - seconds * 1000) {
        first = x;
        break;
      }
    }
    if (first === last) first = samples[samples.length - 2];
    const a = get(first.s);
    const b = get(last.s);
    if (a === undefined || b === undefined) return undefined;
    return { value: Math.max(0, b - a), seconds: (last.t - first.t) / 1000 };
  }

  function recentRate(get, seconds) {
    const d = delta(get, seconds);
    return d && d.seconds > 0 ? d.value / d.seconds : undefined;
  }

  // ---- drawing ----------------------------------------------------------------------------------

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  /** Polylines for a series, split where values are missing. */
  function lines(points, x, y, cls) {
    const out = [];
    let run = [];
    const flush = () => {
      // A lone sample between gaps still shows, as a 2-unit dash.
      if (run.length === 1) run.push([run[0][0] + 2, run[0][1]]);
      if (run.length > 1) out.push(svgEl('polyline', { points: run.map(([px, py]) => px.toFixed(1) + ',' + py.toFixed(1)).join(' '), class: cls }));
      run = [];
    };
    for (const p of points) {
      if (p.v === null) flush();
      else run.push([x(p.t), y(p.v)]);
    }
    flush();
    return out;
  }

  /** A small chart without axes; `title` names the unit for a hover. */
  function sparkline(seriesList, title, width) {
    const w = width || 120;
    const h = 26;
    const now = Date.now();
    const max = niceMax(Math.max(0, ...seriesList.flatMap((s) => s.points.map((p) => p.v ?? 0))));
    const x = (t) => w - ((now - t) / (SPARK_WINDOW_S * 1000)) * w;
    const y = (v) => h - 2 - (v / max) * (h - 4);
    const node = svgEl('svg', { class: 'spark', width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img' });
    node.append(svgEl('title', { text: title + ' (last 2 minutes, top of scale ' + fmt(max) + ')' }));
    node.append(svgEl('line', { x1: 0, x2: w, y1: h - 1, y2: h - 1, class: 'grid', stroke: '#e6e9ed' }));
    for (const s of seriesList) for (const l of lines(s.points, x, y, s.cls)) node.append(l);
    return node;
  }

  /** The protocol chart: time axis (minutes before now), value axis with unit, gridlines. */
  function lineChart(seriesList, unit) {
    const W = 640;
    const H = 180;
    const L = 52;
    const R = 10;
    const T = 14;
    const B = 26;
    const now = Date.now();
    const max = niceMax(Math.max(0, ...seriesList.flatMap((s) => s.points.map((p) => p.v ?? 0))));
    const x = (t) => L + (1 - (now - t) / (CHART_WINDOW_S * 1000)) * (W - L - R);
    const y = (v) => T + (1 - v / max) * (H - T - B);
    const node = svgEl('svg', { class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'Requests per second by protocol, last 5 minutes' });
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      node.append(svgEl('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: i === 0 ? 'axis' : 'grid' }));
      node.append(svgEl('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', text: fmt(v) }));
    }
    node.append(svgEl('text', { x: 4, y: 11, text: unit }));
    for (let m = 0; m <= CHART_WINDOW_S / 60; m++) {
      const t = now - m * 60000;
      node.append(svgEl('line', { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4, class: 'axis' }));
      node.append(svgEl('text', { x: x(t), y: H - 8, 'text-anchor': m === 0 ? 'end' : 'middle', text: m === 0 ? 'now' : '−' + m + ' min' }));
    }
    node.append(svgEl('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }));
    for (const s of seriesList) for (const l of lines(s.points, x, y, s.cls)) node.append(l);
    return node;
  }

  function replaceChildren(node, ...children) {
    node.replaceChildren(...children);
  }

  // ---- sections ---------------------------------------------------------------------------------

  function tile(label, value, unit) {
    return el('div', { class: 'tile' }, [
      el('div', { class: 'label', text: label }),
      el('div', { class: 'value' }, [value, el('span', { class: 'unit', text: unit || '' })]),
    ]);
  }

  function renderTiles(s) {
    const totalRate = recentRate((x) => PROTOCOLS.reduce((n, [p]) => n + (num(x.protocols && x.protocols[p]) ?? 0), 0), 5);
    const req = delta((x) => x.backends.reduce((n, b) => n + b.requests, 0), 10);
    const err = delta((x) => x.backends.reduce((n, b) => n + b.errors, 0), 10);
    const errPct = req && err && req.value > 0 ? (100 * err.value) / req.value : req ? 0 : undefined;
    const available = s.backends.filter((b) => b.healthy && b.enabled).length;
    const tiles = [
      tile('Requests', fmt(totalRate), 'req/s'),
      tile('Backend errors (10 s)', fmt(errPct, errPct === undefined ? undefined : 1), '%'),
      tile('In flight to backends', fmt(s.backends.reduce((n, b) => n + b.activeConnections, 0)), 'req'),
      tile('Client connections', fmt(s.shards.reduce((n, x) => n + x.connections, 0)), ''),
      tile('Backends available', available + ' / ' + s.backends.length, ''),
    ];
    const hit = cacheHitRatio(s);
    if (hit !== undefined) tiles.push(tile('Cache hit ratio', fmt(hit * 100, 1), '%'));
    replaceChildren(document.getElementById('tiles'), ...tiles);
  }

  // Backends: rows are built once per set of ids and updated in place, so a button under the pointer
  // is never replaced between press and release.
  let backendRows = new Map();
  let backendIds = '';

  function buildBackendTable(s) {
    const table = el('table', { class: 'backends' });
    const head = ['Backend', 'State', 'Weight', 'Active', 'Req/s', 'Errors', 'Latency p50 / p99 (last s)', ''];
    table.append(el('thead', {}, [el('tr', {}, head.map((h, i) => el('th', { class: i >= 2 && i <= 6 ? 'num' : '', text: h })))]));
    const body = el('tbody');
    backendRows = new Map();
    for (const b of s.backends) {
      const cells = {
        state: el('span', { class: 'badge' }),
        weight: el('span'),
        active: el('span'),
        rate: el('span'),
        rateSpark: el('span'),
        errors: el('span'),
        errorsSpark: el('span'),
        latency: el('span'),
        latencySpark: el('span'),
        button: el('button', { type: 'button', class: 'drain', 'data-backend': b.id }),
      };
      cells.button.addEventListener('click', () => toggleBackend(b.id, cells.button));
      const row = el('tr', { 'data-backend': b.id }, [
        el('td', { 'data-label': 'Backend' }, [el('div', {}, [el('div', { class: 'id', text: b.id }), el('div', { class: 'addr', text: (b.protocol === 'fastcgi' ? 'fastcgi ' : '') + (b.socket || b.host + ':' + b.port) })])]),
        el('td', { 'data-label': 'State' }, [cells.state]),
        el('td', { class: 'num', 'data-label': 'Weight' }, [cells.weight]),
        el('td', { class: 'num', 'data-label': 'Active requests' }, [cells.active]),
        el('td', { class: 'num', 'data-label': 'Req/s' }, [el('div', { class: 'cell' }, [cells.rateSpark, cells.rate])]),
        el('td', { class: 'num', 'data-label': 'Errors' }, [el('div', { class: 'cell' }, [cells.errorsSpark, cells.errors])]),
        el('td', { class: 'num', 'data-label': 'Latency p50 / p99' }, [el('div', { class: 'cell' }, [cells.latencySpark, cells.latency])]),
        el('td', { 'data-label': 'Rotation' }, [cells.button]),
      ]);
      backendRows.set(b.id, cells);
      body.append(row);
    }
    table.append(body);
    replaceChildren(document.getElementById('backends'), table);
  }

  function renderBackends(s) {
    const ids = s.backends.map((b) => b.id).join('\n');
    if (ids !== backendIds) {
      backendIds = ids;
      buildBackendTable(s);
    }
    s.backends.forEach((b, i) => {
      const c = backendRows.get(b.id);
      const state = !b.enabled ? 'drained' : b.healthy ? 'up' : 'down';
      setText(c.state, state === 'drained' ? (b.healthy ? 'drained' : 'drained, down') : state);
      c.state.className = 'badge ' + state;
      setText(c.weight, b.weight === undefined ? '–' : String(b.weight));
      setText(c.active, String(b.activeConnections));
      const byId = (x) => x.backends.find((y) => y.id === b.id);
      const reqOf = (x) => (byId(x) || {}).requests;
      const errOf = (x) => (byId(x) || {}).errors;
      setText(c.rate, fmt(recentRate(reqOf, 5)) + ' req/s');
            const req = delta(reqOf, 10);
      const err = delta(errOf, 10);
      const pct = req && err && req.value > 0 ? (100 * err.value) / req.value : req ? 0 : undefined;
      setText(c.errors, fmt(pct, pct === undefined ? undefined : 1) + ' %');
      const reqSeries = rateSeries(reqOf, SPARK_WINDOW_S);
      // Errors as a share of the requests of the same second; a second without requests has no error rate.
      const errSeries = rateSeries(errOf, SPARK_WINDOW_S).map((p, k) => {
        const r = reqSeries[k];
        return { t: p.t, v: p.v === null || !r || r.v === null || r.v === 0 ? null : Math.min(100, (100 * p.v) / r.v) };
      });
      replaceChildren(c.rateSpark, sparkline([{ points: reqSeries, cls: 's1' }], 'req/s'));
      replaceChildren(c.errorsSpark, sparkline([{ points: errSeries, cls: 's2' }], 'error rate, %'));
      const recent = s.recent && s.recent.backends && s.recent.backends[i];
      if (recent && recent.count > 0) setText(c.latency, fmt(recent.p50) + ' / ' + fmt(recent.p99) + ' ms');
      else if (b.latencyMs && b.latencyMs.count > 0) setText(c.latency, fmt(b.latencyMs.p50) + ' / ' + fmt(b.latencyMs.p99) + ' ms*');
      else setText(c.latency, '– ms');
      c.latency.title = recent && recent.count > 0 ? recent.count + ' requests in the last ' + fmt(s.recent.windowMs / 1000, 1) + ' s' : '* since start: no request in the last second';
      const recentOf = (field) => gaugeSeries((x) => {
        const r = x.recent && x.recent.backends && x.recent.backends[x.backends.findIndex((y) => y.id === b.id)];
        return r && r.count > 0 ? r[field] : undefined;
      }, SPARK_WINDOW_S);
      replaceChildren(c.latencySpark, sparkline([{ points: recentOf('p50'), cls: 's3' }, { points: recentOf('p99'), cls: 's2' }], 'latency p50 (green) and p99 (orange), ms'));
      const want = pending.get(b.id);
      if (want !== undefined && want === b.enabled) pending.delete(b.id);
      c.button.disabled = pending.has(b.id);
      setText(c.button, b.enabled ? 'Drain' : 'Enable');
      c.button.dataset.action = b.enabled ? 'drain' : 'enable';
      c.button.title = b.enabled ? 'Take ' + b.id + ' out of rotation (requests in flight finish)' : 'Put ' + b.id + ' back into rotation';
    });
  }

  function renderProtocols() {
    const series = PROTOCOLS.map(([p, cls]) => ({ points: rateSeries((x) => num(x.protocols && x.protocols[p]), CHART_WINDOW_S), cls }));
    const legend = el('div', { class: 'legend' }, PROTOCOLS.map(([p, cls]) => {
      const r = recentRate((x) => num(x.protocols && x.protocols[p]), 5);
      return el('span', {}, [el('span', { class: 'key ' + cls }), p + ': ' + fmt(r) + ' req/s']);
    }));
    replaceChildren(document.getElementById('proto-chart'), lineChart(series, 'req/s'), legend);
  }

  function renderShards(s) {
    const rows = s.shards.map((sh) => {
      const reqOf = (x) => (x.shards.find((y) => y.index === sh.index) || {}).requests;
      return el('tr', {}, [
        el('td', { text: String(sh.index) }),
        el('td', {}, [el('span', { class: 'badge ' + (sh.alive ? 'up' : 'down'), text: sh.alive ? 'alive' : 'down' })]),
        el('td', { class: 'num', text: fmt(sh.connections) }),
        el('td', { class: 'num', text: fmt(sh.quicConnections) }),
        el('td', { class: 'num' }, [el('div', { class: 'cell' }, [sparkline([{ points: rateSeries(reqOf, SPARK_WINDOW_S), cls: 's1' }], 'req/s', 80), fmt(recentRate(reqOf, 5)) + ' req/s'])]),
      ]);
    });
    const head = el('tr', {}, ['Shard', 'State', 'Connections', 'QUIC', 'Req/s'].map((h, i) => el('th', { class: i >= 2 ? 'num' : '', text: h })));
    replaceChildren(document.getElementById('shards'), el('table', {}, [el('thead', {}, [head]), el('tbody', {}, rows)]));
  }

  function kvRows(rows) {
    const dl = el('dl', { class: 'kv' });
    for (const [label, total, rate] of rows) dl.append(el('dt', { text: label }), el('dd', { text: total }), el('dd', { class: 'muted', text: rate }));
    return dl;
  }

  function renderQuic(s) {
    const q = s.quic || {};
    const counter = (label, get) => [label, fmt(num(get(s))) + ' total', fmt(recentRate((x) => num(get(x)), 10)) + ' /s'];
    const dropped = (x) => {
      const d = x.quic && x.quic.dropped;
      return d ? Object.values(d).reduce((n, v) => n + (num(v) ?? 0), 0) : undefined;
    };
    replaceChildren(document.getElementById('quic'), kvRows([
      counter('Handshakes', (x) => x.quic && x.quic.handshakes),
      counter('Migrations', (x) => x.quic && x.quic.migrations),
      counter('NAT rebindings', (x) => x.quic && x.quic.natRebindings),
      counter('Retry sent', (x) => x.quic && x.quic.retries),
      counter('Version negotiations', (x) => x.quic && x.quic.versionNegotiations),
      counter('Old-path probes', (x) => x.quic && x.quic.oldPathProbes),
      counter('Dropped packets', dropped),
      ['Open QUIC connections', fmt(s.shards.reduce((n, x) => n + x.quicConnections, 0)), q.handshakes === undefined ? 'no QUIC counters' : ''],
    ]));
  }

  /** Hits over hits + misses, from whatever /stats calls them (the cache lands in parallel). */
  function cacheHitRatio(s) {
    const c = s.cache;
    if (!c || typeof c !== 'object') return undefined;
    const hits = num(c.hits);
    const misses = num(c.misses);
    if (hits === undefined || misses === undefined || hits + misses === 0) return undefined;
    return hits / (hits + misses);
  }

  function renderCache(s) {
    const parts = [];
    const c = s.cache;
    if (c && typeof c === 'object') {
      const rows = [];
      const hit = cacheHitRatio(s);
      const hitsNow = delta((x) => num(x.cache && x.cache.hits), 10);
      const missNow = delta((x) => num(x.cache && x.cache.misses), 10);
      const recent = hitsNow && missNow && hitsNow.value + missNow.value > 0 ? (100 * hitsNow.value) / (hitsNow.value + missNow.value) : undefined;
      if (hit !== undefined) rows.push(['Hit ratio', fmt(hit * 100, 1) + ' % since start', recent === undefined ? '' : fmt(recent, 1) + ' % last 10 s']);
      for (const [k, v] of Object.entries(c)) {
        if (num(v) !== undefined) rows.push([k, fmt(v), fmt(recentRate((x) => num(x.cache && x.cache[k]), 10)) + ' /s']);
      }
      parts.push(kvRows(rows));
    } else {
      parts.push(el('p', { class: 'note', text: 'No cache counters in /stats: the response cache is not enabled or not built in.' }));
    }
    const comp = s.compression;
    if (comp && typeof comp === 'object') {
      const rows = Object.entries(comp)
        .filter(([, v]) => v && num(v.responses) > 0)
        .map(([coding, v]) => [coding, fmt(v.responses) + ' responses', v.bytesIn > 0 ? fmt(100 * (1 - v.bytesOut / v.bytesIn), 1) + ' % smaller' : '']);
      parts.push(el('h2', { text: 'Compression' }));
      parts.push(rows.length > 0 ? kvRows(rows) : el('p', { class: 'note', text: 'No response compressed yet (compression.enabled).' }));
    }
    replaceChildren(document.getElementById('cache'), ...parts);
  }

  function render() {
    const s = samples[samples.length - 1].s;
    setText(document.getElementById('meta'), 'v' + s.version + ' · ' + s.workers + ' shards · up ' + duration(s.uptimeSeconds) + ' · updated ' + new Date().toLocaleTimeString());
    renderTiles(s);
    renderBackends(s);
    renderProtocols();
    renderShards(s);
    renderQuic(s);
    renderCache(s);
  }

  // ---- network ----------------------------------------------------------------------------------

  function setStatus(text) {
    setText(document.getElementById('status'), text);
  }

  async function toggleBackend(id, button) {
    const action = button.dataset.action;
    pending.set(id, action === 'enable');
    button.disabled = true;
    try {
      const res = await fetch('/dashboard/backends/' + encodeURIComponent(id) + '/' + action, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'x-quiclb-csrf': CSRF },
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        throw new Error(body.error || 'HTTP ' + res.status);
      }
      setStatus('');
    } catch (err) {
      pending.delete(id);
      button.disabled = false;
      setStatus('Could not ' + action + ' ' + id + ': ' + err.message);
    }
    // Whatever happened, show the state /stats has now rather than waiting for the next tick.
    setTimeout(() => pending.delete(id), 5000);
    poll(false);
  }

  let inFlight = false;
  async function poll(schedule) {
    if (inFlight) return;
    inFlight = true;
    try {
      const res = await fetch('/dashboard/stats', { credentials: 'same-origin', cache: 'no-store' });
      if (res.status === 401) {
        // The session expired or quiclb restarted (new signing key): back to the login form.
        location.reload();
        return;
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const s = await res.json();
      const last = samples[samples.length - 1];
      if (last && s.uptimeSeconds < last.s.uptimeSeconds) samples.length = 0; // quiclb restarted: counters began again
      samples.push({ t: Date.now(), s });
      while (samples.length > 0 && samples[0].t < Date.now() - (CHART_WINDOW_S + 5) * 1000) samples.shift();
      render();
      if (document.getElementById('status').textContent.startsWith('Cannot reach')) setStatus('');
    } catch (err) {
      setStatus('Cannot reach /dashboard/stats (' + err.message + '); retrying every second');
    } finally {
      inFlight = false;
      if (schedule !== false) setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
