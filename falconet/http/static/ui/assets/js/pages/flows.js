// /ui/flows — flows list with namespace filter, search and paging.
import { h, replace, debounce, labelChips, uiLinkFlow, emptyState, errorBox } from '../util.js';
import { getJson } from '../api.js';
import { pager } from '../components.js';
import { navigate } from '../main.js';

const SIZE = 25;

export function render(root, _params, query) {
  document.title = 'Flows · Falconet';
  const state = { namespace: query.namespace || '', q: query.q || '', page: Math.max(1, +query.page || 1) };
  const nsSelect = h('select', { id: 'flows-ns', onchange: () => { state.namespace = nsSelect.value; state.page = 1; load(); } },
    h('option', { value: '' }, 'All namespaces'));
  const search = h('input', { id: 'flows-q', type: 'search', placeholder: 'Search flows', value: state.q, autocomplete: 'off' });
  search.addEventListener('input', debounce(() => { state.q = search.value.trim(); state.page = 1; load(); }, 250));
  const results = h('div', { 'aria-live': 'polite', 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading flows…'));
  replace(root,
    h('div', { class: 'page-head' }, h('h1', null, 'Flows'), h('span', { class: 'spacer' }),
      h('a', { class: 'button primary', href: '/ui/flows/new' }, '+ Create flow')),
    h('div', { class: 'filters', role: 'search' },
      h('div', { class: 'field' }, h('label', { for: 'flows-ns' }, 'Namespace'), nsSelect),
      h('div', { class: 'field' }, h('label', { for: 'flows-q' }, 'Search'), search)),
    results);

  let alive = true;
  getJson('/flows/distinct-namespaces').then((list) => {
    if (!alive || !Array.isArray(list)) return;
    if (state.namespace && !list.includes(state.namespace)) list = [state.namespace, ...list];
    list.forEach((ns) => nsSelect.appendChild(h('option', { value: ns, selected: ns === state.namespace }, ns)));
  }).catch(() => { if (state.namespace) nsSelect.appendChild(h('option', { value: state.namespace, selected: true }, state.namespace)); });

  let seq = 0;
  async function load() {
    const my = ++seq;
    const params = new URLSearchParams();
    if (state.namespace) params.set('namespace', state.namespace);
    if (state.q) params.set('q', state.q);
    if (state.page > 1) params.set('page', state.page);
    navigate(`/ui/flows${params.toString() ? '?' + params : ''}`, { replace: true, silent: true });
    results.setAttribute('aria-busy', 'true');
    try {
      const data = await getJson('/flows/search', { page: state.page, size: SIZE, namespace: state.namespace, q: state.q, sort: 'id:asc' });
      if (my !== seq || !alive) return;
      const flows = (data && data.results) || [];
      if (!flows.length) {
        replace(results, state.namespace || state.q
          ? emptyState('No flow matches these filters.', 'Change the namespace or the search text.')
          : emptyState('No flows yet.', 'Create your first flow in the editor.', h('a', { class: 'button primary', href: '/ui/flows/new' }, '+ Create flow')));
      } else {
        replace(results,
          h('div', { class: 'table-wrap' }, h('table', null,
            h('thead', null, h('tr', null, h('th', null, 'Id'), h('th', null, 'Namespace'), h('th', { class: 'hide-sm' }, 'Revision'), h('th', { class: 'hide-sm' }, 'Labels'), h('th', { class: 'hide-sm' }, 'Description'))),
            h('tbody', null, flows.map((f) => h('tr', null,
              h('td', null, h('a', { href: uiLinkFlow(f.namespace, f.id) }, f.id), f.disabled ? h('span', { class: 'chip' }, ' disabled') : null),
              h('td', null, f.namespace),
              h('td', { class: 'hide-sm' }, f.revision ?? ''),
              h('td', { class: 'hide-sm' }, labelChips(f.labels)),
              h('td', { class: 'hide-sm muted' }, (f.description || '').split('\n')[0])))))),
          pager(state.page, SIZE, data.total, (p) => { state.page = p; load(); }));
      }
    } catch (e) {
      if (my === seq && alive) replace(results, errorBox(e, 'Could not load flows'));
    } finally {
      results.setAttribute('aria-busy', 'false');
    }
  }
  load();
  return () => { alive = false; };
}
