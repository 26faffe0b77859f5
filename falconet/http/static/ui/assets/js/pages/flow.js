// /ui/flows/new and /ui/flows/edit/{namespace}/{id}[/{tab}] — YAML editor with live validation,
// save, topology, revisions with diff, the flow's executions, the Execute button, and the documentation
// of the task type under the cursor.
import { h, replace, debounce, uiLinkFlow, errorBox, emptyState } from '../util.js';
import { api, getJson, postYaml, putYaml, enc } from '../api.js';
import { tabs, toast } from '../components.js';
import { messageLine } from '../editor.js';
import { createCodeEditor } from '../codeeditor.js';
import { createDocPanel, inlineText } from '../plugindocs.js';
import { renderTopology } from '../topology.js';
import { renderDiff } from '../diff.js';
import { openExecuteDialog } from '../execute.js';
import { navigate, setLeaveGuard } from '../main.js';
import { renderExecutionsList } from './executions.js';
import { renderTriggersList } from './triggers.js';
import { TEMPLATES, withId } from '../flowtemplates.js';
import { downloadText } from './flows.js';
import { confirmDialog } from '../components.js';

const NEW_FLOW = `id: my_flow
namespace: company.team

tasks:
  - id: hello
    type: io.kestra.plugin.core.log.Log
    message: Hello World! 🚀
`;

/** id / namespace of the first YAML document, read from its top-level keys. */
function identity(src) {
  const id = /^id:\s*["']?([^"'\s#]+)/m.exec(src);
  const ns = /^namespace:\s*["']?([^"'\s#]+)/m.exec(src);
  return { id: id && id[1], namespace: ns && ns[1] };
}

export function render(root, params, query = {}) {
  const isNew = !!params.isNew;
  let flow = null; // the saved flow (FlowWithSource), null while new
  const template = isNew && TEMPLATES.find((t) => t.id === query.template);
  let savedSource = isNew ? (template ? template.source : NEW_FLOW) : '';
  let alive = true;
  const cleanups = [];
  document.title = isNew ? 'New flow · Falconet' : `${params.id} · Flows · Falconet`;

  const title = h('h1', null, isNew ? 'New flow' : params.id);
  const revBadge = h('span', { class: 'chip', hidden: true });
  const dirtyMark = h('span', { class: 'muted', hidden: true, 'aria-live': 'polite' }, 'Unsaved changes');
  const saveBtn = h('button', { type: 'button', class: 'primary', onclick: () => save() }, 'Save');
  const execBtn = h('button', { type: 'button', disabled: true, onclick: () => flow && openExecuteDialog(flow) }, '▶ Execute');
  const head = h('div', { class: 'page-head' },
    h('div', null,
      h('div', { class: 'crumbs' }, h('a', { href: '/ui/flows' }, 'Flows'), ' / ', isNew ? 'new' : h('a', { href: `/ui/flows?namespace=${enc(params.namespace)}` }, params.namespace)),
      h('div', { style: { display: 'flex', gap: '8px', alignItems: 'center' } }, title, revBadge)),
    h('span', { class: 'spacer' }), dirtyMark, saveBtn, execBtn,
    isNew ? null : h('div', { class: 'flow-more' },
      h('button', { type: 'button', onclick: () => navigate(`/ui/flows/new?copy=${enc(params.namespace)}/${enc(params.id)}`) }, 'Copy'),
      h('button', { type: 'button', onclick: () => downloadText(`${params.namespace}.${params.id}.yml`, editor.value) }, 'Export'),
      h('button', { type: 'button', class: 'danger', onclick: () => confirmDialog(`Delete ${params.id}?`, `The flow ${params.namespace}.${params.id} is deleted (its revisions and executions are kept).`, 'Delete', async () => {
        await api(`/flows/${enc(params.namespace)}/${enc(params.id)}`, { method: 'DELETE' });
        savedSource = editor.value; // nothing left to lose
        toast(`Deleted ${params.namespace}.${params.id}`, 'success');
        navigate(`/ui/flows?namespace=${enc(params.namespace)}`);
      }, { danger: true }) }, 'Delete')));

  //// editor + validation
  const validation = h('div', { class: 'validation', 'aria-live': 'polite', id: 'validation' });
  const editor = createCodeEditor({ value: savedSource, onChange: () => { markDirty(); validateSoon(); }, onSave: () => save() });
  cleanups.push(() => editor.destroy());
  // the doc panel follows the caret: it reads a textarea-like view of the editor
  const caretView = {
    get value() { return editor.value; },
    get selectionStart() { return editor.view.state.selection.main.head; },
    addEventListener(ev, fn) { if (ev === 'select') editor.events.addEventListener('caret', fn); },
  };
  const docPanel = createDocPanel(caretView);
  cleanups.push(docPanel.cancel);
  const topoPanel = h('aside', { id: 'topo-panel', class: 'topo-panel', 'aria-label': 'Topology of the saved flow', hidden: true });
  const topoToggle = h('button', { type: 'button', 'aria-controls': 'topo-panel', 'aria-pressed': 'false', onclick: () => showTopology(topoPanel.hidden) }, 'Topology');
  function showTopology(on) {
    topoPanel.hidden = !on;
    topoToggle.setAttribute('aria-pressed', on ? 'true' : 'false');
    if (on) drawTopologyPanel();
  }
  function drawTopologyPanel() {
    if (topoPanel.hidden) return;
    replace(topoPanel, flow ? renderTopology(flow) : h('p', { class: 'muted' }, 'Save the flow to see its topology.'));
  }
  const editorPanel = h('div', null, h('div', { class: 'editor-tools' }, topoToggle, docPanel.toggle),
    h('div', { class: 'editor-layout' }, h('div', { class: 'editor-main' }, editor.element, validation), topoPanel, docPanel.element));

  function markDirty() {
    const dirty = editor.differsFrom(savedSource);
    dirtyMark.hidden = !dirty;
  }

  let vseq = 0;
  async function validate() {
    const my = ++vseq;
    const src = editor.value;
    let res;
    try {
      res = await postYaml('/flows/validate', src);
    } catch (e) {
      if (my !== vseq || !alive) return;
      editor.setMarkers(new Map());
      replace(validation, h('p', { class: 'form-error' }, `Validation unavailable: ${e.message}`));
      return;
    }
    if (my !== vseq || !alive) return;
    const markers = new Map();
    const items = [];
    const list = Array.isArray(res) ? res : [res];
    // line offsets of each YAML document (validate answers one entry per `---` document)
    const docs = [];
    let offset = 0;
    src.split(/^---\s*$/m).forEach((d) => { docs.push({ src: d, offset }); offset += d.split('\n').length - 1; });
    for (const r of list) {
      if (!r) continue;
      const doc = docs[r.index || 0] || docs[0];
      const add = (msg, kind) => {
        for (const m of String(msg).split('\n').map((s) => s.trim()).filter(Boolean)) {
          let line = messageLine(doc.src, m);
          if (line) line += doc.offset;
          if (line && kind === 'error') markers.set(line, markers.has(line) ? `${markers.get(line)}\n${m}` : m);
          items.push({ line, message: m, kind });
        }
      };
      if (r.constraints) add(r.constraints, 'error');
      for (const w of r.warnings || []) add(w, 'warn');
      for (const w of r.deprecationPaths || []) add(`${w}: deprecated`, 'warn');
      if (r.outdated) items.push({ line: 0, message: 'The revision in the source is outdated.', kind: 'warn' });
    }
    editor.setMarkers(markers);
    if (!items.length) {
      replace(validation, h('p', { class: 'ok' }, '✓ Valid flow'));
    } else {
      replace(validation, h('ul', { 'aria-label': 'Validation messages' }, items.map((it) => h('li', { class: it.kind === 'warn' ? 'warn' : '' },
        it.line ? h('button', { type: 'button', onclick: () => editor.goToLine(it.line) }, `Line ${it.line}`) : null,
        it.line ? ': ' : '', inlineText(it.message)))));
    }
  }
  const validateSoon = debounce(validate, 350);
  cleanups.push(() => validateSoon.cancel());

  let saveError = null; // the toast of the last failed save: an outdated failure must not stay next to "Saved"
  async function save() {
    const src = editor.value;
    const ident = identity(src);
    saveBtn.disabled = true;
    try {
      let saved;
      if (!isNew && ident.id === params.id && ident.namespace === params.namespace) {
        saved = await putYaml(`/flows/${enc(params.namespace)}/${enc(params.id)}`, src);
      } else {
        saved = await postYaml('/flows', src);
      }
      savedSource = saved && saved.source !== undefined ? saved.source : src;
      if (saveError) { saveError.remove(); saveError = null; }
      toast(`Saved ${saved.namespace}.${saved.id} revision ${saved.revision}`, 'success');
      if (isNew || saved.id !== params.id || saved.namespace !== params.namespace) {
        navigate(uiLinkFlow(saved.namespace, saved.id), { replace: true });
        return;
      }
      setFlow(saved);
      markDirty();
      if (tabsCtl.active === 'revisions') drawRevisions();
    } catch (e) {
      if (saveError) saveError.remove();
      saveError = toast(`Save failed: ${e.message}`, 'error', 10000);
      validate();
    } finally {
      saveBtn.disabled = false;
    }
  }

  function setFlow(f) {
    flow = f;
    revBadge.hidden = !f.revision;
    revBadge.textContent = `revision ${f.revision}`;
    execBtn.disabled = !!f.disabled;
    execBtn.title = f.disabled ? 'This flow is disabled' : '';
    drawTopologyPanel();
  }

  //// tabs
  const tabItems = isNew ? [{ id: 'edit', label: 'Editor' }]
    : [{ id: 'edit', label: 'Editor' }, { id: 'topology', label: 'Topology' }, { id: 'revisions', label: 'Revisions' }, { id: 'executions', label: 'Executions' }, { id: 'triggers', label: 'Triggers' }];
  let listCleanup = null;
  const tabsCtl = tabs(tabItems, params.tab || 'edit', (id, user) => {
    if (listCleanup) { listCleanup(); listCleanup = null; }
    if (user && !isNew) navigate(uiLinkFlow(params.namespace, params.id, id === 'edit' ? '' : id), { replace: true, silent: true });
    if (id === 'edit') replace(tabsCtl.panel, editorPanel);
    else if (id === 'topology') replace(tabsCtl.panel, flow ? h('div', null, flow.description ? h('p', { class: 'muted' }, flow.description) : null, renderTopology(flow)) : h('p', { class: 'loading' }, 'Loading…'));
    else if (id === 'revisions') drawRevisions();
    else if (id === 'executions') {
      const box = h('div');
      replace(tabsCtl.panel, box);
      listCleanup = renderExecutionsList(box, { fixed: { namespace: params.namespace, flowId: params.id }, syncUrl: false });
    } else if (id === 'triggers') {
      const box = h('div');
      replace(tabsCtl.panel, box);
      listCleanup = renderTriggersList(box, { fixed: { namespace: params.namespace, flowId: params.id } });
    }
  }, { label: 'Flow sections' });
  cleanups.push(() => { if (listCleanup) listCleanup(); });

  async function drawRevisions() {
    const panel = tabsCtl.panel;
    replace(panel, h('p', { class: 'loading' }, 'Loading revisions…'));
    let revs;
    try { revs = await getJson(`/flows/${enc(params.namespace)}/${enc(params.id)}/revisions`); } catch (e) { replace(panel, errorBox(e, 'Could not load revisions')); return; }
    if (!alive || tabsCtl.active !== 'revisions') return;
    if (!Array.isArray(revs) || !revs.length) { replace(panel, emptyState('No revisions.')); return; }
    revs = [...revs].sort((a, b) => a.revision - b.revision);
    const opt = (sel) => revs.map((r) => h('option', { value: String(r.revision), selected: r.revision === sel }, `Revision ${r.revision}${r.deleted ? ' (deleted)' : ''}`));
    const last = revs[revs.length - 1].revision;
    const prev = revs.length > 1 ? revs[revs.length - 2].revision : last;
    const left = h('select', { id: 'rev-left' }, opt(prev));
    const right = h('select', { id: 'rev-right' }, opt(last));
    const out = h('div');
    const src = (r) => { const x = revs.find((v) => String(v.revision) === r); return x ? (x.source ?? '') : ''; };
    const draw = () => replace(out, renderDiff(src(left.value), src(right.value), { labelA: `revision ${left.value}`, labelB: `revision ${right.value}` }));
    left.addEventListener('change', draw);
    right.addEventListener('change', draw);
    const loadBtn = h('button', { type: 'button', onclick: () => {
      editor.value = src(right.value); markDirty(); validateSoon(); tabsCtl.select('edit', true);
      toast(`Revision ${right.value} loaded in the editor — save to make it the latest.`);
    } }, 'Load right revision in editor');
    replace(panel,
      h('div', { class: 'filters' },
        h('div', { class: 'field' }, h('label', { for: 'rev-left' }, 'Compare'), left),
        h('div', { class: 'field' }, h('label', { for: 'rev-right' }, 'with'), right), loadBtn),
      out);
    draw();
  }

  replace(root, head, tabsCtl.element);

  if (isNew && query.copy) {
    // a copy: the source of an existing flow under a new id, not saved yet
    const [ns, id] = String(query.copy).split('/');
    getJson(`/flows/${enc(ns)}/${enc(id)}`, { source: 'true' }).then((f) => {
      if (!alive) return;
      editor.value = withId(f.source || '', `${f.id}_copy`);
      markDirty();
      validate();
    }).catch((e) => { if (alive) toast(`Could not copy ${query.copy}: ${e.message}`, 'error', 10000); });
    tabsCtl.select('edit');
  } else if (isNew) {
    tabsCtl.select('edit');
    validate();
  } else {
    replace(tabsCtl.panel, h('p', { class: 'loading' }, 'Loading flow…'));
    getJson(`/flows/${enc(params.namespace)}/${enc(params.id)}`, { source: 'true' }).then((f) => {
      if (!alive) return;
      setFlow(f);
      savedSource = f.source !== undefined && f.source !== null ? f.source : '';
      editor.value = savedSource;
      markDirty();
      tabsCtl.select(params.tab || 'edit');
      validate();
    }).catch((e) => {
      if (!alive) return;
      replace(root, head, e.status === 404
        ? emptyState('Flow not found', `There is no flow ${params.namespace}.${params.id}.`, h('a', { href: '/ui/flows' }, 'Back to flows'))
        : errorBox(e, 'Could not load the flow'));
      saveBtn.disabled = true;
    });
  }

  cleanups.push(setLeaveGuard(() => (editor.differsFrom(savedSource) ? 'This flow has unsaved changes. Leave the editor and lose them?' : null)));
  const beforeUnload = (e) => { if (editor.differsFrom(savedSource)) { e.preventDefault(); e.returnValue = ''; } };
  window.addEventListener('beforeunload', beforeUnload);
  return () => { alive = false; window.removeEventListener('beforeunload', beforeUnload); cleanups.forEach((c) => c()); };
}

