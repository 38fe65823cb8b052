// The built-in dashboard: every number comes from the same Stats API as everyone else's
// (POST {prefix}/api/v2/query), signed in by the session cookie. No request leaves for another host.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './dashboard.css';

const app = document.getElementById('app');
const prefix = app.dataset.prefix;
const $ = (id) => document.getElementById(id);
const state = { site: '', period: '30d', filters: [], noteEvents: [], extras: [], firstDay: '',
  eventDims: [], rawDays: null, tz: 'UTC', range: null };
// The API echoes its range as datetimes in the site's zone; the dashboard shows its days.
const day10 = (text) => text.slice(0, 10);
// Now in the site's zone as "YYYY-MM-DD HH:MM:SS" (the form of the API's time labels).
function localNow() {
  return new Date().toLocaleString('sv-SE', { timeZone: state.tz, hour12: false }).replace(',', '');
}

const FIGURES = [
  ['visitors', 'Unique visitors', 'int'],
  ['visits', 'Visits', 'int'],
  ['pageviews', 'Pageviews', 'int'],
  ['bounce_rate', 'Bounce rate', 'pct'],
  ['views_per_visit', 'Views per visit', 'dec'],
  ['median_load_time', 'Median load', 'ms'],
];
// With the agent's engaged time (ANALYTICS_AGENT_EXTRAS=engagement): asked in a query of their own,
// since they cannot be filtered by an event (a visit filter selects the engaged time of those visits).
const ENGAGED = [
  ['visit_duration', 'Visit duration', 'dur'],
  ['time_on_page', 'Time on page', 'dur'],
];

// Breakdown panels: tabs of [label, dimension, metric, extra filters]; clicking a row filters the
// page by it. Sources leave out `internal` (navigation within the site): they say where visits came from.
// Entry and exit pages are a visit's first and last page (whole visits: the daily visit tables).
const PANELS = [
  ['Top pages', [['Pages', 'event:page', 'pageviews'], ['Entry pages', 'visit:entry_page', 'visitors'],
    ['Exit pages', 'visit:exit_page', 'visitors']]],
  ['Sources', [['Sources', 'visit:source', 'pageviews', [['is_not', 'visit:source', ['internal']]]],
    ['UTM source', 'visit:utm_source', 'pageviews'],
    ['UTM medium', 'visit:utm_medium', 'pageviews'], ['UTM campaign', 'visit:utm_campaign', 'pageviews']]],
  ['Devices', [['Browser', 'visit:browser', 'pageviews'], ['OS', 'visit:os', 'pageviews'],
    ['Device', 'visit:device', 'pageviews']]],
  ['Countries', [['Countries', 'visit:country', 'pageviews']]],
  ['Time zones', [['Time zone', 'visit:timezone', 'pageviews'], ['Platform', 'visit:platform', 'pageviews']]],
  ['Events', [['Events', 'event:name', 'events'], ['Notes', 'event:props:note', 'events']]],
];
// With the agent's outbound links and downloads (ANALYTICS_AGENT_EXTRAS): their own panel.
const LINK_TABS = { outbound: ['Outbound links', 'event:props:destination', 'events'],
  downloads: ['Downloads', 'event:props:file', 'events'] };
const LABELS = { pageviews: 'Pageviews', visitors: 'Visitors', events: 'Events', time_on_page: 'Time on page' };

// Format a metric value for people; the exact API value stays in data-value.
function fmt(value, kind) {
  if (value === null || value === undefined) return '–';
  if (kind === 'pct') return value + '%'; // a whole percent, as the API's (Plausible's) bounce rate
  if (kind === 'dec') return value.toFixed(2);
  if (kind === 'ms') return value >= 1000 ? (value / 1000).toFixed(2) + ' s' : Math.round(value) + ' ms';
  if (kind === 'dur') {
    const s = Math.round(value);
    return s < 60 ? s + ' s' : Math.floor(s / 60) + 'm ' + String(s % 60).padStart(2, '0') + 's';
  }
  return value.toLocaleString('en');
}

// The engaged-time metrics a query may ask for under the current filters (none under an event
// filter; no visit duration for a single page).
function engagedMetrics(metrics) {
  if (!state.extras.includes('engagement')) return [];
  if (state.filters.some((f) => state.eventDims.includes(f[1]))) return [];
  const page = state.filters.some((f) => f[1] === 'event:page');
  return metrics.filter((m) => !(page && m === 'visit_duration'));
}

// The filters a query may carry: event filters only reach event queries; a visit's (source, UTM,
// entry or exit page) reach every query, since they select whole visits, their events too.
function filtersFor(metrics, dims) {
  const eventQuery = metrics.every((m) => m === 'events') || dims.some((d) => state.eventDims.includes(d));
  return state.filters.filter((f) => eventQuery || !state.eventDims.includes(f[1]));
}

async function api(path, body) {
  const init = body ? { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) } : {};
  const resp = await fetch(prefix + path, { credentials: 'same-origin', ...init });
  if (resp.status === 401) { location.reload(); throw new Error('signed out'); }
  const data = await resp.json();
  if (!resp.ok) throw new Error(typeof data.error === 'string' ? data.error : resp.statusText);
  return data;
}

function query(metrics, extra) {
  const dims = (extra && extra.dimensions) || [];
  return api('/api/v2/query', { site_id: state.site, metrics, date_range: state.period,
    filters: filtersFor(metrics, dims), ...extra });
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v; else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

// The days just before the period, as many as it has up to today ("month" and "year" are whole
// months and years; their future days are not compared).
function previousRange(range) {
  const day = 86400000;
  const start = Date.parse(day10(range[0]) + 'T00:00:00Z');
  const last = day10(range[1]) < day10(localNow()) ? day10(range[1]) : day10(localNow());
  const end = Date.parse(last + 'T00:00:00Z');
  const iso = (t) => new Date(t).toISOString().slice(0, 10);
  return [iso(start - (end - start) - day), iso(start - day)];
}

async function loadFigures() {
  const box = $('figures');
  const shown = FIGURES.concat(state.extras.includes('engagement') ? ENGAGED : []);
  const asked = engagedMetrics(ENGAGED.map((f) => f[0]));
  // Under a filter the rollups keep visits but not load times per value, so past the raw
  // retention the median load alone is refused: asked apart, it then reads "–" with the reason.
  const apart = state.filters.length ? ['median_load_time'] : [];
  const main = FIGURES.map((f) => f[0]).filter((m) => !apart.includes(m));
  const why = {}; // metric -> why it has no value
  const side = (metrics, range) => (metrics.length ? query(metrics, range).then((d) => metrics.map((m, i) => [m, d.results[0].metrics[i]]),
    (err) => { metrics.forEach((m) => { why[m] = err.message; }); return []; }) : Promise.resolve([]));
  const ask = (range) => Promise.all([query(main, range), side(apart, range), side(asked, range)])
    .then(([data, load, engaged]) => ({ query: data.query,
      values: Object.fromEntries(main.map((m, i) => [m, data.results[0].metrics[i]]).concat(load, engaged)) }));
  let now;
  try { now = await ask(); } catch (err) { box.replaceChildren(el('p', { class: 'error' }, err.message)); return; }
  let before = null;
  const previous = previousRange(now.query.date_range);
  // A period without visits (today, early) shows dashes, not 0.0% and -100%.
  const empty = now.values.visits === 0;
  if (empty) { now.values.bounce_rate = null; now.values.views_per_visit = null; }
  // No comparison with a period before the site's first data: every change would read "+4000%".
  if (!empty && state.period !== 'all' && state.firstDay && previous[0] >= state.firstDay) {
    try {
      before = await ask({ date_range: previous });
    } catch (err) { before = null; }
  }
  box.classList.toggle('eight', shown.length === 8);
  box.replaceChildren(...shown.map(([name, label, kind]) => {
    const value = name in now.values ? now.values[name] : null;
    const old = before ? before.values[name] : null;
    const card = el('div', { class: 'figure', 'data-metric': name, 'data-value': value === null ? '' : String(value) },
      el('span', { class: 'label' }, label), el('strong', {}, fmt(value, kind)));
    if (!(name in now.values)) {
      card.title = why[name] || 'Engaged time carries no event, and a visit spans pages';
    }
    if (before && old !== null && value !== null && old !== undefined) {
      const delta = old ? Math.round((100 * (value - old)) / old) : null;
      const better = name === 'bounce_rate' || name === 'median_load_time' ? delta < 0 : delta > 0;
      card.append(el('span', { class: 'delta ' + (delta === 0 || delta === null ? '' : better ? 'up' : 'down'),
        title: 'vs ' + before.query.date_range.map(day10).join(' to ') }, delta === null ? 'new' : (delta > 0 ? '+' : '') + delta + '%'));
    }
    return card;
  }));
  // "month" and "year" are whole: the footer says up to today, as their labels ("to date") do.
  const today = day10(localNow());
  const [first, last] = now.query.date_range.map(day10);
  $('foot').textContent = 'Period ' + first + ' to ' + (last < today ? last : today) + ' (' + state.tz + ')';
}

let chart = null;
async function loadChart() {
  const span = state.period === 'day' ? 'time:hour' : ['6mo', '12mo', 'year', 'all'].includes(state.period) ? 'time:month' : 'time:day';
  const box = $('chart');
  let data;
  try {
    data = await query(['visitors', 'pageviews'], { dimensions: [span], include: { time_labels: true } });
  } catch (err) { box.replaceChildren(el('p', { class: 'error' }, err.message)); return; }
  const byLabel = new Map(data.results.map((r) => [r.dimensions[0], r.metrics]));
  // Hours, days and months still to come are not plotted (today's, this month's, this year's).
  const current = localNow();
  const labels = data.meta.time_labels.filter((l) => (span === 'time:hour' ? l <= current : l <= day10(current)));
  const xs = labels.map((l) => Date.parse(l.replace(' ', 'T') + 'Z') / 1000);
  const visitors = labels.map((l) => (byLabel.get(l) || [0, 0])[0]);
  const pageviews = labels.map((l) => (byLabel.get(l) || [0, 0])[1]);
  box.dataset.points = JSON.stringify(labels.map((l, i) => [l, visitors[i], pageviews[i]]));
  if (chart) chart.destroy();
  box.replaceChildren();
  const opts = {
    width: box.clientWidth || 600, height: 260, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    legend: { show: false }, cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(4, max * 1.1)] } },
    axes: [{ stroke: '#6b7280', grid: { show: false } }, { stroke: '#6b7280', grid: { stroke: '#eef0f4' }, size: 50 }],
    series: [{}, { label: 'Visitors', stroke: '#4f46e5', width: 2, fill: 'rgba(79,70,229,0.10)', points: { show: labels.length < 40 } },
      { label: 'Pageviews', stroke: '#0ea5a4', width: 2, points: { show: labels.length < 40 } }],
  };
  chart = new uPlot(opts, [xs, visitors, pageviews], box);
}

function panelCard(title, tabs) {
  const body = el('div', { class: 'rows' });
  const head = el('div', { class: 'card-head' }, el('h2', {}, title));
  const tabBar = el('div', { class: 'tabs', role: 'tablist' });
  const card = el('section', { class: 'card panel', 'data-panel': title }, head, body);
  const show = (i) => {
    [...tabBar.children].forEach((b, j) => b.setAttribute('aria-selected', String(i === j)));
    loadRows(body, tabs[i]);
  };
  if (tabs.length > 1) {
    tabs.forEach((t, i) => tabBar.append(el('button', { role: 'tab', type: 'button', onclick: () => show(i) }, t[0])));
    head.append(tabBar);
  }
  show(0);
  return card;
}

// How a dimension's value reads for people (the filter keeps the exact value).
const regions = typeof Intl.DisplayNames === 'function' ? new Intl.DisplayNames(['en'], { type: 'region' }) : null;
function label(dimension, value) {
  if (dimension === 'visit:timezone' && /^-?\d+$/.test(value)) {
    const minutes = -Number(value); // the browser's offset is UTC minus local time
    const sign = minutes < 0 ? '−' : '+';
    const abs = Math.abs(minutes);
    return 'UTC' + sign + String(Math.floor(abs / 60)).padStart(2, '0') + ':' + String(abs % 60).padStart(2, '0');
  }
  if (dimension === 'visit:country' && /^[A-Z]{2}$/.test(value) && regions) {
    try { return regions.of(value) + ' (' + value + ')'; } catch (err) { return value; }
  }
  return value;
}

async function loadRows(body, [, dimension, metric, extraFilters, second]) {
  body.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  const extra = second ? engagedMetrics([second]) : [];
  let data;
  let since = null;
  try {
    const filters = filtersFor([metric], [dimension]).concat(extraFilters || []);
    const ask = (range) => query([metric], { dimensions: [dimension], filters, pagination: { limit: 10 }, ...range });
    try { data = await ask(); } catch (err) {
      // Under a filter, a breakdown that no rollup keeps, over a range older than the raw points:
      // the days raw points still cover, and the panel says so above its rows.
      // Only the period's own days: none of them kept raw, and the reason stands.
      if (!(filters.length && state.rawDays && state.range && /needs raw data/.test(err.message))) throw err;
      since = [state.rawDays[0] > state.range[0] ? state.rawDays[0] : state.range[0],
        state.rawDays[1] < state.range[1] ? state.rawDays[1] : state.range[1]];
      if (since[0] > since[1]) throw err;
      data = await ask({ date_range: since });
    }
    // The second figure only for the rows shown: one small query (a month of every page's daily
    // medians would be thousands of rows), merged by the dimension's value.
    if (extra.length && data.results.length) {
      const shown = data.results.map((r) => r.dimensions[0]);
      const more = await query(extra, { dimensions: [dimension], filters: filters.concat([['is', dimension, shown]]),
        ...(since ? { date_range: since } : {}) });
      const byValue = new Map(more.results.map((r) => [r.dimensions[0], r.metrics]));
      data.results.forEach((r) => r.metrics.push(...(byValue.get(r.dimensions[0]) || extra.map(() => null))));
    }
  } catch (err) { body.replaceChildren(el('p', { class: 'error' }, err.message)); return; }
  body.dataset.dimension = dimension;
  const note = since ? [el('p', { class: 'muted since', 'data-since': since[0] },
    'Since ' + since[0] + ' only: the rollups keep this breakdown unfiltered, and raw data is kept from then.')] : [];
  if (!data.results.length) { body.replaceChildren(...note, el('p', { class: 'muted' }, 'Nothing in this period.')); return; }
  const top = Math.max(...data.results.map((r) => r.metrics[0]));
  const header = el('div', { class: 'row head' + (extra.length ? ' two' : '') },
    el('span', {}, dimension.split(':').pop().replace('props:', '').replace('_', ' ')),
    ...extra.map((m) => el('span', { class: 'num2' }, LABELS[m])), el('span', { class: 'num' }, LABELS[metric]));
  body.replaceChildren(...note, header, ...data.results.map((r) => {
    const value = r.dimensions[0];
    const row = el('button', { class: 'row' + (extra.length ? ' two' : ''), type: 'button', 'data-value': value,
      'data-count': String(r.metrics[0]), title: 'Filter by ' + value, onclick: () => addFilter(dimension, value) },
    el('span', { class: 'bar' }), el('span', { class: 'name' }, label(dimension, value)),
    ...extra.map((m, i) => el('span', { class: 'num2', 'data-metric': m, 'data-value': r.metrics[i + 1] === null ? '' : String(r.metrics[i + 1]) },
      fmt(r.metrics[i + 1], 'dur'))),
    el('span', { class: 'num' }, fmt(r.metrics[0], 'int')));
    row.firstChild.style.width = ((100 * r.metrics[0]) / top).toFixed(1) + '%'; // CSSOM: allowed by the CSP
    return row;
  }));
}

async function loadUsage(card) {
  const body = card.querySelector('.rows');
  let data;
  try { data = await api('/api/v1/usage?date_range=' + encodeURIComponent(state.period)); } catch (err) {
    body.replaceChildren(el('p', { class: 'error' }, err.message)); return;
  }
  const rows = [...data.actions.map(([a, n]) => [a, n]), ...data.counts.map(([c, e, n]) => [c + ' / ' + e, n])];
  const marks = data.marks.map((m) => el('li', {}, el('time', {}, m.time.slice(0, 16).replace('T', ' ')), ' ', m.name));
  body.replaceChildren(
    rows.length ? el('div', {}, ...rows.map(([name, n]) => el('div', { class: 'row static' }, el('span', { class: 'name' }, name), el('span', { class: 'num' }, fmt(n, 'int')))))
      : el('p', { class: 'muted' }, 'No server-side usage in this period.'),
    marks.length ? el('ul', { class: 'marks' }, ...marks) : '');
}

function addFilter(dimension, value) {
  if (!state.filters.some((f) => f[1] === dimension)) state.filters.push(['is', dimension, [value]]);
  refresh();
}

function renderFilters() {
  const bar = $('filters');
  bar.hidden = !state.filters.length;
  bar.replaceChildren(...state.filters.map((f, i) => el('button', { class: 'chip', type: 'button', title: 'Remove filter',
    onclick: () => { state.filters.splice(i, 1); refresh(); } }, f[1].split(':').pop().replace('_', ' ') + ' is ' + label(f[1], f[2][0]) + ' ×')));
}

async function loadRealtime() {
  if (!state.site) return;
  try {
    const n = await api('/api/v1/stats/realtime/visitors?site_id=' + encodeURIComponent(state.site));
    const b = $('realtime').querySelector('b');
    b.textContent = fmt(n, 'int');
    b.dataset.value = String(n);
  } catch (err) { /* the next tick tries again */ }
}

async function refresh() {
  // The first day with data (no comparison before it), and the period's first and last days as
  // the API reads the shortcut (a filtered breakdown's raw days stay inside it): asked together.
  const echo = (range) => api('/api/v2/query', { site_id: state.site, metrics: ['pageviews'], date_range: range })
    .then((d) => d.query.date_range.map(day10), () => null);
  const [all, period] = await Promise.all([echo('all'), echo(state.period)]);
  state.firstDay = all ? all[0] : '';
  state.range = period;
  renderFilters();
  loadFigures();
  loadChart();
  loadRealtime();
  const grid = $('panels');
  // Time on page beside the pages a visitor viewed (not beside entry or exit pages: engaged time
  // is a pageview's, not a visit's).
  const panels = PANELS.map(([title, tabs]) => [title,
    tabs.map((t) => (t[1] === 'event:page' ? [...t, undefined, 'time_on_page'] : t))]);
  const links = ['outbound', 'downloads'].filter((e) => state.extras.includes(e)).map((e) => LINK_TABS[e]);
  if (links.length) panels.splice(panels.length - 1, 0, ['Links', links]);
  grid.replaceChildren(...panels.map(([title, tabs]) => panelCard(title, tabs)));
  const usage = el('section', { class: 'card panel', 'data-panel': 'Server usage' },
    el('div', { class: 'card-head' }, el('h2', {}, 'Server usage')), el('div', { class: 'rows' }));
  grid.append(usage);
  loadUsage(usage);
  const hash = new URLSearchParams({ site: state.site, period: state.period, filters: JSON.stringify(state.filters) });
  history.replaceState(null, '', '#' + hash.toString());
}

// Open on the site with the most pageviews in the 30 days up to today (the first of the first 20
// sites): a site whose first visit is today's is found too.
async function busiestSite(sites) {
  const today = day10(localNow());
  const since = new Date(Date.parse(today + 'T00:00:00Z') - 29 * 86400000).toISOString().slice(0, 10);
  const counts = await Promise.all(sites.slice(0, 20).map((site) =>
    api('/api/v2/query', { site_id: site, metrics: ['pageviews'], date_range: [since, today] })
      .then((d) => d.results[0].metrics[0], () => 0)));
  let best = 0;
  counts.forEach((n, i) => { if (n > counts[best]) best = i; });
  return sites[best] || '';
}

async function start() {
  const params = new URLSearchParams(location.hash.slice(1));
  const info = await api('/api/v1/sites');
  state.noteEvents = info.note_events;
  state.tz = info.time_zone;
  state.extras = info.agent_extras || [];
  // Which dimensions only events carry: the server's catalogue says.
  state.eventDims = info.event_dimensions;
  state.rawDays = info.raw_days; // [first day raw points still cover, today], or null: kept forever
  const picker = $('site');
  picker.replaceChildren(...info.sites.map((s) => el('option', { value: s }, s)));
  state.site = info.sites.includes(params.get('site')) ? params.get('site') : await busiestSite(info.sites);
  picker.value = state.site;
  if (params.get('period')) state.period = params.get('period');
  $('period').value = state.period;
  try { state.filters = JSON.parse(params.get('filters') || '[]'); } catch (err) { state.filters = []; }
  picker.addEventListener('change', () => { state.site = picker.value; state.filters = []; refresh(); });
  $('period').addEventListener('change', () => { state.period = $('period').value; refresh(); });
  new ResizeObserver(() => { if (chart) chart.setSize({ width: $('chart').clientWidth, height: 260 }); }).observe($('chart'));
  setInterval(loadRealtime, 30000);
  refresh();
}

start();
