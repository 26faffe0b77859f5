// Client-side router (History API) and page shell. Kestra's UI URLs:
//   /ui/flows, /ui/flows/new, /ui/flows/edit/{namespace}/{id}[/{tab}]
//   /ui/executions, /ui/executions/{namespace}/{flowId}/{id}[/{tab}]
//   /ui/plugins, /ui/plugins/{type}
import { h, replace, emptyState } from './util.js';
import { confirmDialog } from './components.js';
import { themePicker } from './theme.js';

const routes = [
  { re: /^\/ui\/(?:dashboard\/?)?$/, nav: 'dashboard', load: () => import('./pages/dashboard.js'), params: () => ({}) },
  // Kestra ≥ 0.23 puts the tenant in UI URLs (/ui/main/executions/...): same pages here
  { re: /^\/ui\/main(\/.*)$/, redirect: (m) => `/ui${m[1]}${location.search}` },
  { re: /^\/ui\/flows\/?$/, nav: 'flows', load: () => import('./pages/flows.js'), params: () => ({}) },
  { re: /^\/ui\/flows\/new\/?$/, nav: 'flows', load: () => import('./pages/flow.js'), params: () => ({ isNew: true }) },
  { re: /^\/ui\/flows\/edit\/([^/]+)\/([^/]+)(?:\/([^/]+))?\/?$/, nav: 'flows', load: () => import('./pages/flow.js'),
    params: (m) => ({ namespace: m[1], id: m[2], tab: m[3] }) },
  { re: /^\/ui\/executions\/?$/, nav: 'executions', load: () => import('./pages/executions.js'), params: () => ({}) },
  { re: /^\/ui\/executions\/([^/]+)\/([^/]+)\/([^/]+)(?:\/([^/]+))?\/?$/, nav: 'executions', load: () => import('./pages/execution.js'),
    params: (m) => ({ namespace: m[1], flowId: m[2], id: m[3], tab: m[4] }) },
  { re: /^\/ui\/namespaces\/?$/, nav: 'namespaces', load: () => import('./pages/namespaces.js'), params: () => ({}) },
  { re: /^\/ui\/namespaces\/edit\/([^/]+)(?:\/([^/]+))?\/?$/, nav: 'namespaces', load: () => import('./pages/namespaces.js'),
    params: (m) => ({ namespace: m[1], tab: m[2] }) },
  { re: /^\/ui\/logs\/?$/, nav: 'logs', load: () => import('./pages/logs.js'), params: () => ({}) },
  { re: /^\/ui\/admin\/triggers\/?$/, nav: 'triggers', load: () => import('./pages/triggers.js'), params: () => ({}) },
  { re: /^\/ui\/plugins\/?$/, nav: 'plugins', load: () => import('./pages/plugins.js'), params: () => ({}) },
  { re: /^\/ui\/plugins\/([^/]+)\/?$/, nav: 'plugins', load: () => import('./pages/plugins.js'), params: (m) => ({ type: m[1] }) },
];

let cleanup = null;
let renderSeq = 0;
let leaveGuard = null; // set by a page holding unsaved work: () => question to ask before leaving, or null
let currentUrl = location.pathname + location.search;

/** While `fn()` returns a question, in-app navigation (links, Back/Forward) asks it before leaving.
 * Returns the function that removes the guard. */
export function setLeaveGuard(fn) {
  leaveGuard = fn;
  return () => { if (leaveGuard === fn) leaveGuard = null; };
}

function confirmLeave(go) {
  const question = leaveGuard && leaveGuard();
  if (!question) { go(); return; }
  confirmDialog('Unsaved changes', question, 'Leave without saving', () => { leaveGuard = null; go(); }, { danger: true });
}

function decodeParams(p) {
  const out = {};
  for (const [k, v] of Object.entries(p)) out[k] = typeof v === 'string' ? decodeURIComponent(v) : v;
  return out;
}

async function render() {
  const seq = ++renderSeq;
  const path = location.pathname;
  currentUrl = path + location.search;
  const main = document.getElementById('main');
  if (cleanup) { try { cleanup(); } catch (e) { console.warn('cleanup failed', e); } cleanup = null; }
  for (const r of routes) {
    const m = r.re.exec(path);
    if (!m) continue;
    if (r.redirect) { navigate(typeof r.redirect === 'function' ? r.redirect(m) : r.redirect, { replace: true }); return; }
    document.querySelectorAll('[data-nav]').forEach((a) => {
      if (a.dataset.nav === r.nav) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    });
    const mod = await r.load();
    if (seq !== renderSeq) return;
    const container = h('div', { class: 'page' });
    replace(main, container);
    const query = Object.fromEntries(new URLSearchParams(location.search).entries());
    const allQuery = new URLSearchParams(location.search);
    cleanup = mod.render(container, decodeParams(r.params(m)), query, allQuery) || null;
    return;
  }
  document.title = 'Not found · Falconet';
  replace(main, h('div', { class: 'page' }, emptyState('Page not found', `No page at ${path}.`, h('a', { href: '/ui/flows' }, 'Go to flows'))));
}

/** Go to a UI URL without reloading. `replace` keeps the history length (filters, redirects). */
export function navigate(url, { replace: rep = false, silent = false } = {}) {
  if (silent) go(url, rep, silent); else confirmLeave(() => go(url, rep, silent));
}

function go(url, rep, silent) {
  if (rep) history.replaceState(null, '', url); else history.pushState(null, '', url);
  if (silent) currentUrl = url;
  if (!silent) {
    render();
    if (!rep) window.scrollTo(0, 0);
  }
}

document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest && e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/ui/') || url.pathname.startsWith('/ui/assets/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
  const main = document.getElementById('main');
  if (main) main.focus({ preventScroll: true });
});

document.querySelector('.topbar')?.appendChild(themePicker());

window.addEventListener('popstate', () => {
  if (leaveGuard && leaveGuard()) { // Back/Forward: stay on this page until the user agrees to leave
    const target = location.pathname + location.search;
    history.pushState(null, '', currentUrl);
    confirmLeave(() => go(target, false, false));
    return;
  }
  render();
});
render();
