// Plugin documentation, rendered from GET /api/v1/plugins/{type} (Kestra's {markdown, schema} body):
// the property table of a type, the editor's side panel (docs of the task under the cursor), and
// typeAtLine(): which `type:` the YAML block around a line belongs to.
import { h, replace, debounce, errorBox } from './util.js';
import { getJson, enc } from './api.js';

//// Loading (one request per type per page load)

const cache = new Map();

/** The documentation body of a type (canonical name or alias); rejects with ApiError (404 when unknown). */
export function loadPluginDoc(type) {
  if (!cache.has(type)) {
    const p = getJson(`/plugins/${enc(type)}`);
    p.catch(() => cache.delete(type)); // a failure is retried next time
    cache.set(type, p);
  }
  return cache.get(type);
}

let known = null;

/** Every type name the server documents (canonical names and aliases), read once from GET /plugins. */
export function knownPluginTypes() {
  if (!known) {
    known = getJson('/plugins').then((groups) => new Set((groups || []).flatMap((g) =>
      [...(g.tasks || []), ...(g.triggers || []), ...(g.conditions || []), ...(g.aliases || [])])));
    known.catch(() => { known = null; });
  }
  return known;
}

/** A URL of the documentation page of a type. */
export const uiLinkPlugin = (type) => `/ui/plugins/${enc(type)}`;

//// Text

/** Nodes of one line of Markdown-ish text: `code` spans as <code>, **bold** as <strong>; the rest as text. */
export function inlineText(text) {
  return String(text ?? '').split(/`([^`]+)`/).flatMap((s, i) => (i % 2 ? [h('code', null, s)]
    : s.split(/\*\*([^*]+)\*\*/).map((t, j) => (j % 2 ? h('strong', null, t) : t))));
}

/** Text with inline Markdown (see inlineText), paragraphs split on blank lines. */
export function richText(text, tag = 'p') {
  return String(text || '').split(/\n\s*\n/).filter((s) => s.trim()).map((para) => h(tag, null, inlineText(para)));
}

const REF_NAMES = { 'tasks.Task': 'task', 'conditions.Condition': 'condition', 'flows.Input': 'input' };

function refName(ref) {
  for (const [k, v] of Object.entries(REF_NAMES)) if (ref && ref.endsWith(k)) return v;
  return 'object';
}

/** Short type label of a property schema: string, duration, integer, array of tasks, map of task lists… */
export function typeLabel(s) {
  if (!s || typeof s !== 'object') return 'any';
  if (s.$ref) return refName(s.$ref);
  if (s.format === 'duration') return 'duration';
  if (s.enum) return 'enum';
  if (s.type === 'array') return s.items ? `array of ${typeLabel(s.items)}s` : 'array';
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object') return `map of ${typeLabel(s.additionalProperties)}`;
  if (s.type === 'object' && s.additionalProperties === true) return 'map';
  return s.type || 'any';
}

function defaultText(v) {
  if (v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Rows of a schema's properties, nested object properties as dotted names: [{name, schema, required}]. */
export function propertyRows(schema, prefix = '') {
  const rows = [];
  const required = new Set((schema && schema.required) || []);
  for (const [name, s] of Object.entries((schema && schema.properties) || {})) {
    rows.push({ name: prefix + name, schema: s, required: required.has(name) });
    if (s && s.type === 'object' && s.properties) rows.push(...propertyRows(s, `${prefix}${name}.`));
  }
  return rows;
}

//// Rendering

function details(s) {
  const out = [];
  if (s.description) out.push(...richText(s.description));
  if (s.enum) out.push(h('p', { class: 'muted' }, 'One of: ', s.enum.map((v, i) => [i ? ', ' : '', h('code', null, v)])));
  if (s.$aliases && s.$aliases.length) out.push(h('p', { class: 'muted' }, 'Also accepted as: ', s.$aliases.map((v, i) => [i ? ', ' : '', h('code', null, v)])));
  return out;
}

/** The full property table: name, type, required, default, dynamic, description. */
export function propertiesTable(schema, { caption = 'Properties' } = {}) {
  const rows = propertyRows(schema);
  return h('div', { class: 'table-wrap' }, h('table', { class: 'props-table' },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', null, h('tr', null, ['Name', 'Type', 'Required', 'Default', 'Dynamic', 'Description'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, rows.map((r) => h('tr', { dataset: { prop: r.name } },
      h('th', { scope: 'row', class: 'mono' }, r.name),
      h('td', { class: 'nowrap' }, typeLabel(r.schema)),
      h('td', null, r.required ? h('span', { class: 'req-yes' }, 'required') : h('span', { class: 'muted' }, 'no')),
      h('td', { class: 'mono' }, defaultText(r.schema.default)),
      h('td', null, r.schema.$dynamic ? 'yes' : h('span', { class: 'muted' }, 'no')),
      h('td', { class: 'prop-desc' }, details(r.schema)))))));
}

/** A compact property list for the narrow editor panel. */
function propertiesList(schema) {
  return h('dl', { class: 'props-list' }, propertyRows(schema).map((r) => [
    h('dt', { dataset: { prop: r.name } }, h('code', null, r.name), ' ', h('span', { class: 'type' }, typeLabel(r.schema)),
      r.required ? h('span', { class: 'req-yes' }, ' required') : null),
    h('dd', null, details(r.schema),
      (r.schema.default !== undefined || r.schema.$dynamic) ? h('p', { class: 'muted' },
        r.schema.default !== undefined ? ['Default ', h('code', null, defaultText(r.schema.default))] : null,
        r.schema.default !== undefined && r.schema.$dynamic ? ' · ' : null,
        r.schema.$dynamic ? 'dynamic' : null) : null),
  ]));
}

/** The YAML of an example as shown: a task-level one gets `id` and `type` lines first (as Kestra's docs). */
export function exampleCode(type, ex) {
  if (ex.full) return ex.code;
  const short = type.split('.').pop();
  const snake = short.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
  return `id: "${snake}"\ntype: "${type}"\n${ex.code}`;
}

function examplesSection(doc, heading) {
  const list = (doc.schema && doc.schema.properties && doc.schema.properties.$examples) || [];
  if (!list.length) return null;
  return h('section', { class: 'plugin-examples', 'aria-label': 'Examples' }, h(heading, null, 'Examples'),
    list.map((ex) => h('figure', { class: 'example' },
      ex.title ? h('figcaption', null, inlineText(ex.title)) : null,
      h('pre', { class: 'mono' }, h('code', null, exampleCode(doc.type, ex).replace(/\n$/, ''))))));
}

function outputsSection(doc, heading) {
  const out = (doc.schema && doc.schema.outputs) || {};
  const props = Object.entries(out.properties || {});
  if (!props.length) return null;
  const required = new Set(out.required || []);
  return h('section', { class: 'plugin-outputs', 'aria-label': 'Outputs' }, h(heading, null, 'Outputs'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'props-table' },
      h('thead', null, h('tr', null, ['Name', 'Type', 'Always set', 'Description'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, props.map(([name, p]) => h('tr', { dataset: { output: name } },
        h('th', { scope: 'row', class: 'mono' }, name), h('td', null, typeLabel(p)),
        h('td', null, required.has(name) ? 'yes' : h('span', { class: 'muted' }, 'no')),
        h('td', null, inlineText(p.title || p.description || ''))))))));
}

function metricsSection(doc, heading) {
  const list = (doc.schema && doc.schema.properties && doc.schema.properties.$metrics) || [];
  if (!list.length) return null;
  return h('section', { class: 'plugin-metrics', 'aria-label': 'Metrics' }, h(heading, null, 'Metrics'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'props-table' },
      h('thead', null, h('tr', null, ['Name', 'Type', 'Unit', 'Description'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, list.map((m) => h('tr', { dataset: { metric: m.name } },
        h('th', { scope: 'row', class: 'mono' }, m.name), h('td', null, m.type), h('td', null, m.unit || ''),
        h('td', null, inlineText(m.description || ''))))))));
}

/** Title, description, aliases and properties of one documentation body. `compact` for the editor panel. */
export function renderPluginDoc(doc, { compact = false, headingLevel = 1 } = {}) {
  const schema = (doc.schema && doc.schema.properties) || {};
  const aliases = doc.aliases || [];
  const heading = `h${headingLevel}`;
  return h('article', { class: `plugin-doc${compact ? ' compact' : ''}` },
    h(heading, { class: 'plugin-type' }, doc.type),
    schema.title ? h('p', { class: 'plugin-title' }, schema.title) : null,
    h('div', { class: 'plugin-desc' }, richText(schema.description)),
    h('p', { class: 'muted plugin-aliases' }, h('span', { class: 'chip' }, doc.kind || 'tasks'),
      aliases.length ? [' Aliases: ', aliases.map((a, i) => [i ? ', ' : '', h('code', null, a)])] : null),
    compact ? h('p', null, h('a', { href: uiLinkPlugin(doc.type) }, 'Open the full documentation')) : null,
    compact ? null : examplesSection(doc, `h${headingLevel + 1}`),
    h(`h${headingLevel + 1}`, null, 'Properties'),
    compact ? propertiesList(schema) : propertiesTable(schema, { caption: `Properties of ${doc.type}` }),
    outputsSection(doc, `h${headingLevel + 1}`),
    metricsSection(doc, `h${headingLevel + 1}`),
    compact ? examplesSection(doc, `h${headingLevel + 1}`) : null);
}

//// Which type is the YAML block at a line about?

function splitComment(line) {
  let q = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) { if (c === q) q = null; continue; }
    if ((c === '"' || c === "'") && (i === 0 || /[\s:\-[{,]/.test(line[i - 1]))) { q = c; continue; }
    if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i);
  }
  return line;
}

/** Per line: null (blank/comment) or {start (first column), col (content column), key, value}. */
function lineInfos(lines) {
  let blockCol = -1;
  return lines.map((raw) => {
    const line = splitComment(raw);
    if (!line.trim()) return null;
    const indent = line.length - line.trimStart().length;
    if (blockCol >= 0 && indent > blockCol) return { start: indent, col: indent, key: null, value: '' };
    blockCol = -1;
    let col = indent;
    let rest = line.slice(indent);
    let m;
    while ((m = /^-(\s+|$)/.exec(rest))) { col += m[0].length; rest = rest.slice(m[0].length); }
    const km = /^("[^"]*"|'[^']*'|[^\s#'"{[][^:#]*?)\s*:(\s|$)(.*)$/.exec(rest);
    const info = { start: indent, col, key: km ? km[1].replace(/^["']|["']$/g, '') : null, value: km ? km[3].trim() : '' };
    if (km && /^[|>][-+]?\d*$/.test(info.value)) blockCol = col;
    return info;
  });
}

const PLUGIN_TYPE = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$/;

/**
 * The plugin type of the YAML mapping around `line` (1-based): the `type:` key of the innermost mapping
 * holding the line whose value looks like a class name (`io.kestra.plugin.core.log.Log`), climbing to
 * enclosing mappings (a task's `retry:` block, a Parallel around a task without a type yet). null if none.
 */
export function typeAtLine(src, line) {
  const infos = lineInfos(String(src).split('\n'));
  let i = Math.min(line, infos.length) - 1;
  while (i >= 0 && !infos[i]) i -= 1;
  if (i < 0) return null;
  let col = infos[i].col;
  for (;;) {
    // the mapping at `col` holding line i: back to its first line, forward to its last
    let s = i;
    while (s > 0) {
      const cur = infos[s];
      if (cur && cur.start < col) break; // the item's own "- key:" line, or the parent
      let p = s - 1;
      while (p >= 0 && !infos[p]) p -= 1;
      if (p < 0) break;
      if (infos[p].start < col && infos[p].col !== col) break; // parent key line
      s = p;
    }
    let e = i;
    for (let n = i + 1; n < infos.length; n++) {
      if (!infos[n]) continue;
      if (infos[n].start < col) break;
      e = n;
    }
    for (let n = s; n <= e; n++) {
      const inf = infos[n];
      if (inf && inf.col === col && inf.key === 'type') {
        const v = inf.value.replace(/^["']|["']$/g, '');
        if (PLUGIN_TYPE.test(v)) return v;
      }
    }
    // climb: the nearest line above the mapping whose content starts left of it
    let p = s;
    while (p >= 0 && !(infos[p] && infos[p].col < col)) p -= 1;
    if (p < 0) return null;
    i = p;
    col = infos[p].col;
  }
}

//// The editor's side panel

const PANEL_KEY = 'falconet.docPanel';

/**
 * A documentation panel following the caret of `textarea`: shows the docs of typeAtLine(caret line).
 * Returns {element (the panel), toggle (a button showing/hiding it, remembered in localStorage), update()}.
 */
export function createDocPanel(textarea) {
  const body = h('div', { class: 'doc-panel-body', 'aria-live': 'polite' });
  const panel = h('aside', { id: 'doc-panel', class: 'doc-panel', 'aria-label': 'Task documentation', tabindex: '-1' }, body);
  let shown = true;
  try { shown = localStorage.getItem(PANEL_KEY) !== 'hidden'; } catch { /* storage disabled */ }
  const toggle = h('button', { type: 'button', 'aria-controls': 'doc-panel', onclick: () => setShown(!shown) }, 'Documentation');
  let current;
  let seq = 0;

  function setShown(on) {
    shown = on;
    panel.hidden = !on;
    toggle.setAttribute('aria-pressed', on ? 'true' : 'false');
    try { localStorage.setItem(PANEL_KEY, on ? 'shown' : 'hidden'); } catch { /* storage disabled */ }
    if (on) update();
  }

  async function update() {
    if (!shown) return;
    const caretLine = textarea.value.slice(0, textarea.selectionStart).split('\n').length;
    const type = typeAtLine(textarea.value, caretLine);
    if (type === current) return;
    current = type;
    const my = ++seq;
    if (!type) {
      replace(body, h('p', { class: 'muted' }, 'Put the cursor on a task, trigger or condition to see the documentation of its type.'));
      return;
    }
    replace(body, h('p', { class: 'loading' }, `Loading ${type}…`));
    try {
      // a half-typed name is not asked for: only the types the catalogue lists are
      const types = await knownPluginTypes();
      if (my !== seq) return;
      if (!types.has(type)) { replace(body, h('p', { class: 'muted' }, 'No plugin named ', h('code', null, type), '.')); return; }
      const doc = await loadPluginDoc(type);
      if (my === seq) replace(body, renderPluginDoc(doc, { compact: true, headingLevel: 2 }));
    } catch (e) {
      if (my !== seq) return;
      replace(body, e.status === 404
        ? h('p', { class: 'muted' }, 'No plugin named ', h('code', null, type), '.')
        : errorBox(e, 'Could not load the documentation'));
    }
  }

  const soon = debounce(update, 120);
  for (const ev of ['keyup', 'click', 'input', 'focus', 'select']) textarea.addEventListener(ev, soon);
  setShown(shown);
  return { element: panel, toggle, update, cancel: () => soon.cancel() };
}
