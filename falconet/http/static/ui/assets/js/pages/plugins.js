// /ui/plugins — every plugin type grouped by package, with a search box; /ui/plugins/{type} — one type's
// documentation (title, description, aliases, properties), all from /api/v1/plugins.
import { h, replace, debounce, emptyState, errorBox } from '../util.js';
import { getJson } from '../api.js';
import { navigate } from '../main.js';
import { loadPluginDoc, renderPluginDoc, uiLinkPlugin } from '../plugindocs.js';

const KINDS = [['tasks', 'Tasks'], ['triggers', 'Triggers'], ['conditions', 'Conditions']];

export function render(root, params, query) {
  return params.type ? renderType(root, params.type) : renderList(root, query);
}

/** Does a type (or one of its group's aliases naming it) match every word of the search text? */
function matches(type, words) {
  const t = type.toLowerCase();
  return words.every((w) => t.includes(w));
}

function renderList(root, query) {
  document.title = 'Plugins · Falconet';
  const search = h('input', { id: 'plugins-q', type: 'search', placeholder: 'Search plugin types', value: query.q || '', autocomplete: 'off' });
  const results = h('div', { 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading plugins…'));
  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Plugins')),
    h('div', { class: 'filters', role: 'search' },
      h('div', { class: 'field' }, h('label', { for: 'plugins-q' }, 'Search'), search)),
    results);

  let groups = null;
  let alive = true;
  function draw() {
    const q = search.value.trim();
    navigate(`/ui/plugins${q ? `?q=${encodeURIComponent(q)}` : ''}`, { replace: true, silent: true });
    const words = q.toLowerCase().split(/\s+/).filter(Boolean);
    const sections = [];
    for (const g of groups) {
      const lists = KINDS.map(([kind, label]) => [label, (g[kind] || []).filter((t) => matches(t, words))]).filter(([, l]) => l.length);
      if (!lists.length) continue;
      const headId = `plugin-group-${g.group.replace(/[^\w-]/g, '-')}`;
      sections.push(h('section', { class: 'panel plugin-group', 'aria-labelledby': headId },
        h('h2', { id: headId }, g.group),
        lists.map(([label, types]) => [
          h('h3', null, label),
          h('ul', { class: 'plugin-list' }, types.map((t) => h('li', null,
            h('a', { href: uiLinkPlugin(t) }, t.slice(g.group.length + 1) || t),
            h('span', { class: 'muted mono' }, ` ${t}`)))),
        ])));
    }
    replace(results, sections.length ? sections
      : emptyState('No plugin type matches this search.', 'Search part of a type name, e.g. "Log" or "flow.If".'));
  }
  search.addEventListener('input', debounce(() => { if (groups) draw(); }, 150));

  getJson('/plugins').then((data) => {
    if (!alive) return;
    groups = Array.isArray(data) ? data : [];
    draw();
  }).catch((e) => { if (alive) replace(results, errorBox(e, 'Could not load the plugins')); })
    .finally(() => results.setAttribute('aria-busy', 'false'));
  return () => { alive = false; };
}

function renderType(root, type) {
  document.title = `${type} · Plugins · Falconet`;
  const crumbs = h('div', { class: 'crumbs' }, h('a', { href: '/ui/plugins' }, 'Plugins'), ' / ', type);
  replace(root, crumbs, h('p', { class: 'loading' }, `Loading ${type}…`));
  let alive = true;
  loadPluginDoc(type).then((doc) => {
    if (!alive) return;
    if (doc.type !== type) { // an alias: show the canonical page
      navigate(uiLinkPlugin(doc.type), { replace: true });
      return;
    }
    replace(root, crumbs, renderPluginDoc(doc));
  }).catch((e) => {
    if (!alive) return;
    replace(root, crumbs, e.status === 404
      ? emptyState('Unknown plugin type', `There is no plugin type ${type}.`, h('a', { href: '/ui/plugins' }, 'Back to plugins'))
      : errorBox(e, 'Could not load the documentation'));
  });
  return () => { alive = false; };
}
