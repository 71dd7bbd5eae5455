// agentqueue's dashboard: a page over /admin/queues/api. No framework, no CDN. Every value
// from the API is put in the page as text (createTextNode), never as HTML: job data is
// whatever a user sent.
'use strict';

const API = '/admin/queues/api';
const POLL_MS = 2000;
// An open job page follows the job's own event stream (SSE) and polls only as a fallback.
const LIVE_FALLBACK_MS = 10000;
const JOB_EVENTS = ['job-update', 'job-delta', 'job-completed', 'job-failed'];
let live = null;
const STATES = ['waiting', 'active', 'delayed', 'paused', 'completed', 'failed'];
const STATUSES = ['queued', 'active', 'completed', 'failed', 'cancelled', 'pending'];
let poller = null;

// -- building the page --------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  for (const child of children.flat()) {
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function show(...nodes) {
  const view = document.getElementById('view');
  view.replaceChildren(...nodes.filter((node) => node !== null && node !== undefined && node !== false));
}

function toast(message, error) {
  const el = document.getElementById('toast');
  el.textContent = message;
  el.className = error ? 'error' : '';
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, 4000);
}

const chip = (state, n, href) => h(href ? 'a' : 'span',
  { class: `chip s-${state}`, href, 'data-state': state }, state, n === undefined ? null : h('b', {}, n));
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
const money = (usd) => `$${Number(usd || 0).toFixed(4)}`;
const json = (value) => h('pre', {}, JSON.stringify(value, null, 2));

// -- talking to the API -------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path, options = {}) {
  return call(API + path, options);
}

async function call(url, options = {}) {
  const headers = { Accept: 'application/json', ...(options.body ? { 'Content-Type': 'application/json' } : {}) };
  const key = sessionStorage.getItem('agentqueue.key');
  if (key) headers.Authorization = `Bearer ${key}`;
  const answer = await fetch(url, { ...options, headers });
  const body = await answer.json().catch(() => ({}));
  if (answer.status === 401 || answer.status === 403) throw new Unauthorized(body.message || answer.statusText);
  if (!answer.ok) throw new Error(body.message || body.detail || answer.statusText);
  return body;
}

async function act(path, confirmText, body) {
  if (confirmText && !window.confirm(confirmText)) return false;
  try {
    await api(path, { method: 'POST', body: body ? JSON.stringify(body) : undefined });
    toast('Done');
    return true;
  } catch (error) {
    toast(error.message, true);
    return false;
  }
}

// -- views ----------------------------------------------------------------------------------

function loginView(message) {
  const input = h('input', { type: 'password', id: 'key', placeholder: 'API key (admin or organization admin)', autocomplete: 'off' });
  const form = h('form', { class: 'panel login', onsubmit: (event) => {
    event.preventDefault();
    sessionStorage.setItem('agentqueue.key', input.value.trim());
    route();
  } },
  h('h1', {}, 'Sign in'),
  h('p', { class: 'muted' }, message || 'Paste an API key. It stays in this tab only.'),
  input, h('button', { class: 'primary', type: 'submit', id: 'login' }, 'Open the dashboard'));
  show(form);
  input.focus();
}

function sparkline(values, bad) {
  // The last hour, a bar a minute, oldest left: minutes without data are empty.
  const points = [...Array(Math.max(0, 60 - values.length)).fill(0), ...values.slice(-60)];
  const width = 300; const height = 40; const max = Math.max(1, ...points);
  const step = width / Math.max(points.length, 1);
  return svg('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img' },
    points.map((n, i) => svg('rect', {
      x: i * step, y: height - (n / max) * height, width: Math.max(step - 1, 1),
      height: (n / max) * height, class: bad ? 'bad' : '' })));
}

async function overviewView() {
  const data = await api('/overview');
  const cards = data.queues.map((queue) => {
    const counts = queue.counts || {};
    const hour = queue.lastHour;
    const actions = data.scope === 'all' ? h('div', { class: 'row' },
      h('button', { onclick: async () => { if (await act(`/queues/${queue.name}/${queue.paused ? 'resume' : 'pause'}`)) route(); } },
        queue.paused ? 'Resume' : 'Pause'),
      h('button', { class: 'danger', 'data-action': 'retry-failed', disabled: !counts.failed, onclick: async () => {
        if (await act(`/queues/${queue.name}/retry-failed`, `Retry all ${counts.failed} failed jobs of ${queue.name}?`)) route();
      } }, 'Retry all failed'),
      cleanControl(queue.name)) : null;
    return h('section', { class: 'panel', 'data-queue': queue.name },
      h('div', { class: 'row spread' }, h('h2', {}, queue.name),
        h('span', { class: 'row' }, queue.paused ? chip('paused') : null,
          h('span', { class: 'muted' }, `${queue.workers} worker${queue.workers === 1 ? '' : 's'}`))),
      h('div', { class: 'row' }, Object.entries(counts)
        .map(([state, n]) => chip(state, n, `#/jobs?queue=${encodeURIComponent(queue.name)}&status=${recordStatus(state)}`))),
      hour ? h('div', {},
        h('p', { class: 'muted' }, `Last hour: ${hour.completed} completed, ${hour.failed} failed (${(hour.failureRate * 100).toFixed(1)} % failing)`),
        sparkline(hour.completedPerMinute), hour.failed ? sparkline(hour.failedPerMinute, true) : null) : null,
      actions);
  });
  show(h('h1', {}, 'Queues'), h('div', { class: 'grid' }, cards));
}

function recordStatus(state) {
  return { waiting: 'queued', delayed: 'queued', paused: 'queued', prioritized: 'queued' }[state] || state;
}

function cleanControl(queue) {
  const state = h('select', { 'aria-label': 'state to clean' },
    ['completed', 'failed', 'waiting', 'delayed'].map((s) => h('option', { value: s }, s)));
  const age = h('select', { 'aria-label': 'older than' },
    [['0', 'all'], ['3600', 'older than 1 h'], ['86400', 'older than 1 day']].map(([v, t]) => h('option', { value: v }, t)));
  return h('span', { class: 'row' }, state, age, h('button', { onclick: async () => {
    if (await act(`/queues/${queue}/clean`, `Remove ${state.value} jobs of ${queue} (${age.selectedOptions[0].text})?`,
      { state: state.value, olderThanS: Number(age.value) })) route();
  } }, 'Clean'));
}

async function jobsView(params) {
  const query = new URLSearchParams(params);
  const data = await api(`/jobs?${query}`);
  const overview = await api('/overview');
  const field = (name, label, node) => h('label', { class: 'row' }, h('span', { class: 'muted' }, label), node);
  const select = (name, values) => h('select', { name },
    h('option', { value: '' }, 'any'), values.map((v) => h('option', { value: v, selected: params.get(name) === v }, v)));
  const text = (name, placeholder) => h('input', { name, placeholder, value: params.get(name) || '' });
  const form = h('form', { class: 'panel row', onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(event.target)) if (value) next.set(key, value);
    location.hash = `#/jobs?${next}`;
  } },
  field('queue', 'Queue', select('queue', overview.queues.map((q) => q.name))),
  field('status', 'Status', select('status', STATUSES)),
  field('type', 'Type', text('type', 'chat')), field('owner', 'Owner', text('owner', 'user id')),
  field('q', 'Search', text('q', 'job id or title')),
  field('sort', 'Sort', h('select', { name: 'sort' }, ['newest', 'oldest'].map((v) => h('option', { value: v, selected: params.get('sort') === v }, v)))),
  h('button', { class: 'primary', type: 'submit' }, 'Filter'));
  const rows = data.jobs.map((job) => h('tr', { class: 'link', 'data-job': `${job.queue}/${job.id}`,
    onclick: () => { location.hash = `#/job/${encodeURIComponent(job.queue)}/${encodeURIComponent(job.id)}`; } },
  h('td', {}, job.id), h('td', {}, job.queue), h('td', {}, job.type), h('td', {}, chip(job.status)),
  h('td', {}, job.user || '–', job.org ? h('span', { class: 'muted' }, ` (${job.org})`) : null),
  h('td', {}, `${job.attempts}/${job.maxAttempts}`), h('td', {}, job.tokens), h('td', {}, money(job.cost)),
  h('td', {}, when(job.createdAt)), h('td', { class: 'muted' }, job.error || '')));
  const page = Number(params.get('page') || 1);
  const pages = Math.max(1, Math.ceil(data.total / data.size));
  const goto = (n) => { const next = new URLSearchParams(params); next.set('page', n); location.hash = `#/jobs?${next}`; };
  show(h('h1', {}, 'Jobs'), form,
    h('table', {}, h('thead', {}, h('tr', {}, ['Id', 'Queue', 'Type', 'Status', 'Owner', 'Attempts', 'Tokens', 'Cost', 'Created', 'Error'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 10, class: 'muted' }, 'No jobs')))),
    h('div', { class: 'row' }, h('button', { disabled: page <= 1, onclick: () => goto(page - 1) }, '‹ Newer'),
      h('span', { class: 'muted' }, `page ${page} of ${pages} · ${data.total} jobs`),
      h('button', { disabled: page >= pages, onclick: () => goto(page + 1) }, 'Older ›')));
  return true;
}

function progressOf(job) {
  const progress = (job.live && job.live.progress) ?? (job.record && job.record.progress);
  if (progress === null || progress === undefined) return null;
  if (typeof progress === 'number') return { percent: progress };
  const percent = progress.percent ?? (progress.total ? (100 * progress.current) / progress.total : null);
  return { ...progress, percent };
}

function approvalOf(job) {
  if (job.state !== 'awaiting_approval') return null;
  const progress = (job.live && job.live.progress) || (job.record && job.record.progress);
  return progress && typeof progress === 'object' ? progress.approval || null : null;
}

async function jobView(queue, id) {
  const job = await api(`/jobs/${encodeURIComponent(queue)}/${encodeURIComponent(id)}`);
  const record = job.record || {};
  const live = job.live || {};
  const progress = progressOf(job);
  const finished = ['completed', 'failed', 'cancelled'];
  const showProgress = progress && (job.state === 'active' || progress.percent > 0 || progress.text || progress.message);
  const button = (action, label, when, css, confirmText) => (when ? h('button', { class: css, 'data-action': action, onclick: async () => {
    if (await act(`/jobs/${encodeURIComponent(queue)}/${encodeURIComponent(id)}/${action}`, confirmText)) route();
  } }, label) : null);
  const state = job.state;
  const attempts = (live.stacktrace || []).map((stack, i) => h('div', {}, h('p', { class: 'muted' }, `Attempt ${i + 1}`), h('pre', {}, stack)));
  show(
    h('div', { class: 'row spread' }, h('h1', {}, `Job ${id} `, h('span', { class: 'muted' }, `· ${queue}`)),
      h('div', { class: 'row' }, chip(state),
        button('retry', 'Retry', state === 'failed' || state === 'cancelled', 'primary'),
        button('cancel', 'Cancel', ['waiting', 'active', 'delayed', 'paused', 'prioritized'].includes(state), 'danger', `Cancel job ${id}?`),
        button('promote', 'Run now', state === 'delayed'),
        state === 'awaiting_approval' ? h('button', { class: 'primary', 'data-action': 'approve', onclick: async () => {
          if (await act(`/jobs/${encodeURIComponent(queue)}/${encodeURIComponent(id)}/approval`, null, { decision: 'approve' })) route();
        } }, 'Approve') : null,
        state === 'awaiting_approval' ? h('button', { class: 'danger', 'data-action': 'deny', onclick: async () => {
          const reason = window.prompt('Deny this tool call? The model is told why:', '');
          if (reason !== null && await act(`/jobs/${encodeURIComponent(queue)}/${encodeURIComponent(id)}/approval`, null, { decision: 'deny', reason: reason || null })) route();
        } }, 'Deny') : null,
        button('remove', 'Remove', state !== 'active', 'danger', `Remove job ${id} from Redis? Its record stays.`))),
    h('section', { class: 'panel' }, h('dl', { class: 'kv' },
      h('dt', {}, 'Type'), h('dd', {}, record.type || live.name || '–'),
      h('dt', {}, 'Owner'), h('dd', {}, record.user || '–', record.org ? ` (${record.org})` : ''),
      h('dt', {}, 'Attempts'), h('dd', {}, `${record.attempts ?? live.attempts_made ?? 0} of ${record.maxAttempts ?? live.max_attempts ?? 1}`),
      h('dt', {}, 'Tokens / cost'), h('dd', {}, `${record.tokens ?? 0} tokens · ${money(record.cost)}${record.model ? ` · ${record.model}` : ''}`),
      h('dt', {}, 'Created'), h('dd', {}, when(record.createdAt)),
      h('dt', {}, 'Finished'), h('dd', {}, when(record.finishedAt)))),
    showProgress ? h('section', { class: 'panel' }, h('h2', {}, 'Progress'),
      h('div', { class: 'row' }, h('div', { class: 'progress' }, h('div', { style: `width:${Math.min(100, Math.max(0, progress.percent || 0))}%` })),
        h('span', {}, `${Math.round(progress.percent || 0)} %`),
        progress.total ? h('span', { class: 'muted' }, `${progress.current} of ${progress.total}`) : null,
        progress.message ? h('span', { class: 'muted' }, progress.message) : null),
      progress.text ? h('div', {}, h('h2', {}, progress.streaming ? 'Streaming…' : 'Streamed text'), h('div', { class: 'streamed', id: 'streamed' }, progress.text)) : null) : null,
    approvalOf(job) ? h('section', { class: 'panel', id: 'approval' }, h('h2', {}, 'Awaiting approval'),
      h('p', {}, 'The model asks to call ', h('strong', {}, approvalOf(job).tool), approvalOf(job).expiresAt ? h('span', { class: 'muted' }, ` · decide before ${when(approvalOf(job).expiresAt)}`) : null),
      json(approvalOf(job).arguments)) : null,
    state === 'failed' && (record.error || live.failed_reason)
      ? h('section', { class: 'panel' }, h('h2', {}, 'Error'), h('pre', { id: 'error' }, record.error || live.failed_reason), attempts)
      : attempts.length ? h('section', { class: 'panel' }, h('h2', {}, 'Errors of earlier attempts'), attempts) : null,
    h('section', { class: 'panel' }, h('h2', {}, 'Data'), json(record.data ?? live.data)),
    (record.result ?? live.result) !== undefined && (record.result ?? live.result) !== null
      ? h('section', { class: 'panel' }, h('h2', {}, 'Result'), h('div', { id: 'result' }, json(record.result ?? live.result))) : null,
    job.logs && job.logs.length ? h('section', { class: 'panel' }, h('h2', {}, 'Logs'), h('pre', {}, job.logs.join('\n'))) : null,
    job.history ? h('section', { class: 'panel' }, h('h2', {}, 'Timeline'), h('ul', { class: 'timeline' },
      job.history.map((e) => h('li', {}, chip(e.status), ' ', when(e.at), e.attempt ? h('span', { class: 'muted' }, ` · attempt ${e.attempt}`) : null,
        e.message ? h('span', { class: 'muted' }, ` · ${e.message}`) : null)))) : null);
  // Follow it while it runs, and until its record has caught up with Redis.
  const running = !finished.includes(state) || (job.record && !finished.includes(record.status));
  if (running) follow(queue, id);
  return running ? LIVE_FALLBACK_MS : false;
}

async function schedulesView() {
  const data = await call('/api/schedules');
  const act = async (id, action, confirmText) => {
    if (confirmText && !window.confirm(confirmText)) return;
    try {
      await call(`/api/schedules/${encodeURIComponent(id)}${action === 'remove' ? '' : `/${action}`}`,
        { method: action === 'remove' ? 'DELETE' : 'POST' });
      toast('Done');
      route();
    } catch (error) { toast(error.message, true); }
  };
  const rows = data.schedules.map((item) => h('tr', { 'data-schedule': item.id },
    h('td', {}, item.id), h('td', {}, item.type), h('td', {}, item.queue),
    h('td', {}, item.cron ? `${item.cron} (${item.tz || 'UTC'})` : `every ${item.every} ms`),
    h('td', {}, item.paused ? chip('paused') : (item.nextRuns || []).slice(0, 3).map(when).join(' · ') || '–'),
    h('td', {}, item.iterations), h('td', {}, item.userId || '–', item.organizationId ? ` (${item.organizationId})` : ''),
    h('td', { class: 'row' },
      h('button', { onclick: () => act(item.id, item.paused ? 'resume' : 'pause') }, item.paused ? 'Resume' : 'Pause'),
      h('button', { class: 'danger', onclick: () => act(item.id, 'remove', `Delete schedule ${item.id}? Its runs' records stay.`) }, 'Delete'))));
  show(h('h1', {}, 'Schedules'),
    h('table', {}, h('thead', {}, h('tr', {}, ['Id', 'Type', 'Queue', 'When', 'Next runs', 'Runs', 'Owner', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'No schedules')))));
  return true;
}

function barChart(rows, value, label) {
  const width = 760; const height = 160; const max = Math.max(1e-9, ...rows.map(value));
  const step = width / Math.max(rows.length, 1);
  return svg('svg', { class: 'chart', width, height: height + 20, viewBox: `0 0 ${width} ${height + 20}`, role: 'img', 'aria-label': label },
    rows.map((row, i) => svg('g', {},
      svg('rect', { x: i * step + 2, y: height - (value(row) / max) * height, width: Math.max(step - 4, 2), height: (value(row) / max) * height },
        svg('title', {}, `${row.key}: ${value(row)}`)),
      rows.length <= 31 ? svg('text', { x: i * step + 2, y: height + 14 }, row.key.slice(5)) : null)));
}

async function usageView(params) {
  const days = params.get('days') || '30';
  const data = await api(`/usage?days=${encodeURIComponent(days)}`);
  const table = (title, rows) => h('section', { class: 'panel' }, h('h2', {}, title),
    h('table', {}, h('thead', {}, h('tr', {}, ['', 'Jobs', 'Tokens', 'Cost'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('td', {}, r.key), h('td', {}, r.jobs ?? '–'), h('td', {}, r.tokens), h('td', {}, money(r.cost)))))));
  show(h('div', { class: 'row spread' }, h('h1', {}, 'Usage'),
    h('select', { onchange: (event) => { location.hash = `#/usage?days=${event.target.value}`; } },
      ['7', '30', '90'].map((d) => h('option', { value: d, selected: d === days }, `last ${d} days`)))),
  h('section', { class: 'panel', id: 'usage-chart' }, h('h2', {}, 'Cost by day (USD)'), barChart(data.byDay, (r) => r.cost, 'cost by day'),
    h('h2', {}, 'Tokens by day'), barChart(data.byDay, (r) => r.tokens, 'tokens by day')),
  h('div', { class: 'grid' }, table('By model', data.byModel), table('By job type', data.byType), table('By organization', data.byOrg)));
}

// -- routing ---------------------------------------------------------------------------------

// Re-render the job page on each of its events (a burst of text deltas: once per 250 ms).
function follow(queue, id) {
  const key = `${queue}:${id}`;
  if (live && live.key === key) return;
  stopFollowing();
  const token = sessionStorage.getItem('agentqueue.key');
  const url = `/api/jobs/${encodeURIComponent(key)}/events${token ? `?token=${encodeURIComponent(token)}` : ''}`;
  const source = new EventSource(url);
  live = { key, source, timer: null };
  const refreshSoon = () => {
    if (live && live.source === source && !live.timer) {
      live.timer = setTimeout(() => { if (live) live.timer = null; refresh(); }, 250);
    }
  };
  for (const name of JOB_EVENTS) source.addEventListener(name, refreshSoon);
  source.addEventListener('error', () => { if (source.readyState === EventSource.CLOSED) stopFollowing(); });
}

function stopFollowing() {
  if (live) { live.source.close(); clearTimeout(live.timer); live = null; }
}

async function route() {
  clearTimeout(poller);
  const [path, search] = location.hash.slice(1).split('?');
  const parts = (path || '/').split('/').filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(search || '');
  for (const link of document.querySelectorAll('header nav a')) {
    link.classList.toggle('active', link.dataset.nav === (parts[0] === 'job' ? 'jobs' : parts[0] || 'overview'));
  }
  try {
    const me = await api('/me');
    document.getElementById('who').textContent = `${me.user} · ${me.role}${me.org ? ` · ${me.org}` : ''}`;
    document.getElementById('logout').hidden = !sessionStorage.getItem('agentqueue.key');
    let again = true;
    if (parts[0] === 'jobs') again = await jobsView(params);
    else if (parts[0] === 'job') again = await jobView(parts[1], parts[2]);
    else if (parts[0] === 'usage') { await usageView(params); again = false; }
    else if (parts[0] === 'schedules') again = await schedulesView();
    else await overviewView();
    if (parts[0] !== 'job' || !again) stopFollowing();
    if (again) poller = setTimeout(refresh, typeof again === 'number' ? again : POLL_MS);
  } catch (error) {
    if (error instanceof Unauthorized) loginView(sessionStorage.getItem('agentqueue.key') ? error.message : null);
    else { toast(error.message, true); poller = setTimeout(refresh, POLL_MS * 2); }
  }
}

function refresh() {
  // Not while someone is typing in a filter or has a menu open.
  if (document.activeElement && ['INPUT', 'SELECT'].includes(document.activeElement.tagName)) {
    poller = setTimeout(refresh, POLL_MS);
    return;
  }
  route();
}

document.getElementById('logout').addEventListener('click', () => {
  sessionStorage.removeItem('agentqueue.key');
  route();
});
window.addEventListener('hashchange', route);
route();
