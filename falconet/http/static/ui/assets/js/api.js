// Access to Falconet's Kestra-compatible API (/api/v1) and its websockets.

export const API = '/api/v1';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
    // Micronaut constraint violations: {_embedded: {errors: [{message, path}]}}
    this.errors = (body && body._embedded && Array.isArray(body._embedded.errors)) ? body._embedded.errors : [];
  }
}

/** Query string from an object; arrays repeat the key, null/undefined/'' are skipped. */
export function qs(params) {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => { if (x !== '' && x != null) sp.append(k, x); });
    else sp.append(k, v);
  }
  const s = sp.toString();
  return s ? `?${s}` : '';
}

/**
 * Call the API. Returns parsed JSON, text for non-JSON bodies, or null for empty bodies.
 * Throws ApiError with Kestra's `message` for any non-2xx answer, or status 0 on network failure.
 */
export async function api(path, { method = 'GET', query, body, headers = {}, signal } = {}) {
  const url = `${API}${path}${qs(query)}`;
  let resp;
  try {
    resp = await fetch(url, { method, body, headers: { Accept: 'application/json', ...headers }, signal });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, `The server could not be reached (${e.message || e}).`, null);
  }
  const text = await resp.text();
  const type = resp.headers.get('content-type') || '';
  let data = text;
  if (text && type.includes('json')) {
    try { data = JSON.parse(text); } catch { data = text; }
  } else if (!text) {
    data = null;
  }
  if (!resp.ok) {
    let message = (data && typeof data === 'object' && data.message) ? data.message : (typeof data === 'string' && data.trim() ? data.trim().slice(0, 500) : resp.statusText || 'Request failed');
    throw new ApiError(resp.status, message, typeof data === 'object' ? data : null);
  }
  return data;
}

export const getJson = (path, query, opts) => api(path, { query, ...(opts || {}) });
export const postYaml = (path, yaml, query) => api(path, { method: 'POST', body: yaml, query, headers: { 'Content-Type': 'application/x-yaml' } });
export const putYaml = (path, yaml) => api(path, { method: 'PUT', body: yaml, headers: { 'Content-Type': 'application/x-yaml' } });

export const enc = encodeURIComponent;

// Open sockets, so a network drop can be simulated from the console or a browser test:
// `__falconetDropSockets()` closes them as a lost connection would (the UI then reconnects).
const openSockets = new Set();
const FINAL_CLOSE_CODES = new Set([4401, 4403, 4404, 4422]);
window.__falconetDropSockets = () => { const n = openSockets.size; openSockets.forEach((ws) => ws.close(4000, 'dropped')); return n; };

/**
 * A websocket that reconnects with backoff until closed or until a message of type "end" arrives.
 * Every (re)connection starts with a fresh snapshot from the server, so the caller replaces its state
 * on the first "execution" message after `onOpen`.
 * Callbacks: onMessage(msg), onOpen(), onStatus('connecting'|'live'|'reconnecting'|'offline'|'ended'|'closed'|'unavailable'|'failed'),
 * onRefused(code, reason) when the server closes with a 44xx code (no reconnection then).
 * If the socket never opens `maxFailures` times in a row, status 'unavailable' is reported once and
 * reconnection continues at the slowest pace (the caller may poll meanwhile). While the browser is
 * offline the socket is dropped and 'offline' reported; it reconnects as soon as the network is back.
 */
export function openSocket(path, { onMessage, onOpen, onStatus, onRefused, maxFailures = 3 } = {}) {
  let ws = null;
  let closed = false;
  let failures = 0;
  let timer = null;
  let everOpened = false;
  const status = (s) => onStatus && onStatus(s);

  function connect() {
    if (closed) return;
    if (navigator.onLine === false) { status('offline'); return; }
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    status(everOpened ? 'reconnecting' : 'connecting');
    let opened = false;
    let ended = false;
    try {
      ws = new WebSocket(`${proto}//${location.host}${API}${path}`);
    } catch (e) {
      schedule();
      return;
    }
    openSockets.add(ws);
    ws.onopen = () => {
      opened = true; everOpened = true; failures = 0;
      status('live');
      if (onOpen) onOpen();
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg && msg.type === 'end') ended = true;
      if (onMessage) onMessage(msg);
      if (ended) { closed = true; status('ended'); try { ws.close(1000); } catch { /* already closing */ } }
    };
    ws.onerror = () => { /* onclose follows and decides */ };
    ws.onclose = (ev) => {
      openSockets.delete(ev.target);
      ws = null;
      if (closed || ended) return;
      if (FINAL_CLOSE_CODES.has(ev.code)) { // the server refused for good: unknown execution, bad filter
        closed = true;
        status('failed');
        if (onRefused) onRefused(ev.code, ev.reason);
        return;
      }
      if (!opened) failures += 1;
      if (failures === maxFailures) status('unavailable');
      schedule();
    };
  }

  function schedule() {
    if (closed) return;
    const delay = Math.min(10000, 500 * 2 ** Math.min(failures, 5));
    status(failures >= maxFailures ? 'unavailable' : 'reconnecting');
    timer = setTimeout(connect, delay);
  }

  // a socket is not told the network went away: the browser's offline/online events are
  const onOffline = () => {
    if (closed) return;
    clearTimeout(timer);
    const dropped = ws;
    ws = null;
    if (dropped) { dropped.onclose = null; openSockets.delete(dropped); try { dropped.close(4000, 'offline'); } catch { /* already closing */ } }
    status('offline');
  };
  const onOnline = () => { if (closed || ws) return; clearTimeout(timer); failures = 0; connect(); };
  window.addEventListener('offline', onOffline);
  window.addEventListener('online', onOnline);

  connect();
  return {
    close() {
      closed = true;
      window.removeEventListener('offline', onOffline);
      window.removeEventListener('online', onOnline);
      clearTimeout(timer);
      if (ws) { try { ws.close(1000); } catch { /* ignore */ } }
      status('closed');
    },
    get failing() { return failures >= maxFailures; },
  };
}
