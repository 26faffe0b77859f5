// A namespace's files (Kestra's /api/v1/namespaces/{ns}/files…): a folder tree loaded folder by folder,
// an editor for the selected file, new file / new folder, upload, rename (move) and delete.
import { h, replace, errorBox, emptyState } from './util.js';
import { api, enc, API } from './api.js';
import { openDialog, confirmDialog, toast } from './components.js';
import { createCodeEditor } from './codeeditor.js';

const join = (dir, name) => `${dir.replace(/\/$/, '')}/${name}`;
const parentOf = (path) => path.replace(/\/[^/]*$/, '') || '/';

/** Ask for a name (or path) in a dialog; resolves with the trimmed text, or null when cancelled. */
function askName(title, label, initial = '') {
  return new Promise((resolve) => {
    let done = false;
    const { dialog } = openDialog(title, (close) => {
      const input = h('input', { id: 'nsf-name', type: 'text', value: initial, required: true, autocomplete: 'off' });
      return h('form', { onsubmit: (e) => { e.preventDefault(); if (!input.value.trim()) return; done = true; resolve(input.value.trim()); close(); } },
        h('div', { class: 'field' }, h('label', { for: 'nsf-name' }, label), input),
        h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), h('button', { type: 'submit', class: 'primary' }, 'OK')));
    });
    dialog.addEventListener('close', () => { if (!done) resolve(null); });
  });
}

/** The Files tab of a namespace. Returns a cleanup function. */
export function renderNamespaceFiles(box, ns) {
  const base = `/namespaces/${enc(ns)}/files`;
  let alive = true;
  let current = null; // {path, editor, saved}
  const tree = h('div', { class: 'nsf-tree', role: 'tree', 'aria-label': `Files of ${ns}` });
  const pane = h('div', { class: 'nsf-pane' }, h('p', { class: 'muted' }, 'Select a file to edit it, or create one.'));
  const upload = h('input', { type: 'file', id: 'nsf-upload', multiple: true, class: 'sr-only', onchange: async () => {
    const files = [...upload.files];
    upload.value = '';
    for (const f of files) {
      try { await put(join(selectedDir(), f.name), f); } catch (e) { toast(`Upload of ${f.name} failed: ${e.message}`, 'error', 10000); return; }
    }
    toast(`Uploaded ${files.length} file${files.length === 1 ? '' : 's'}`, 'success');
    refresh();
  } });
  let selectedFolder = '/';
  const selectedDir = () => selectedFolder;

  replace(box,
    h('div', { class: 'filters nsf-tools' },
      h('button', { type: 'button', onclick: () => newEntry(false) }, 'New file'),
      h('button', { type: 'button', onclick: () => newEntry(true) }, 'New folder'),
      h('label', { for: 'nsf-upload', class: 'button', tabindex: '0', role: 'button',
        onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); upload.click(); } } }, 'Upload'), upload),
    h('div', { class: 'nsf-layout' }, tree, pane));

  function put(path, blob) {
    const form = new FormData();
    form.append('fileContent', blob, path.split('/').pop());
    return api(base, { method: 'POST', query: { path }, body: form });
  }

  async function listInto(ul, dir) {
    let entries;
    try { entries = await api(`${base}/directory`, { query: { path: dir } }); } catch (e) {
      if (alive) replace(ul, h('li', null, errorBox(e, 'Could not list the folder')));
      return;
    }
    if (!alive) return;
    entries = [...entries].sort((a, b) => (a.type === b.type ? a.fileName.localeCompare(b.fileName) : a.type === 'Directory' ? -1 : 1));
    if (!entries.length && dir === '/') { replace(ul, h('li', null, emptyState('No file yet.', 'Create or upload files; flows read them with read() or namespaceFiles.'))); return; }
    replace(ul, entries.map((e) => entryEl(join(dir, e.fileName), e)));
  }

  function actions(path, isDir) {
    return h('span', { class: 'nsf-actions' },
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': `Rename ${path}`, title: 'Rename or move', onclick: (ev) => { ev.stopPropagation(); rename(path); } }, '✎'),
      h('button', { type: 'button', class: 'icon-btn danger', 'aria-label': `Delete ${path}`, title: 'Delete', onclick: (ev) => { ev.stopPropagation(); remove(path, isDir); } }, '🗑'));
  }

  function entryEl(path, e) {
    if (e.type === 'Directory') {
      const ul = h('ul', { role: 'group' });
      const det = h('details', { dataset: { path } },
        h('summary', { role: 'treeitem', onclick: () => { selectedFolder = path; } }, h('span', null, `📁 ${e.fileName}`), actions(path, true)), ul);
      det.addEventListener('toggle', () => { if (det.open) listInto(ul, path); });
      return h('li', null, det);
    }
    return h('li', null, h('div', { class: 'nsf-file', role: 'treeitem', tabindex: '0', dataset: { path },
      onclick: () => open(path), onkeydown: (ev) => { if (ev.key === 'Enter') open(path); } },
    h('span', null, e.fileName), h('span', { class: 'muted small' }, `${e.size} B`), actions(path, false)));
  }

  function refresh() {
    const ul = h('ul', { role: 'group' });
    replace(tree, h('div', { class: 'nsf-root', onclick: () => { selectedFolder = '/'; } }, h('strong', null, '/'), ' ', h('span', { class: 'muted small' }, ns)), ul);
    listInto(ul, '/');
  }

  async function open(path) {
    if (current && current.editor.differsFrom(current.saved) && !window.confirm(`Discard the changes to ${current.path}?`)) return;
    selectedFolder = parentOf(path);
    replace(pane, h('p', { class: 'loading' }, `Loading ${path}…`));
    let text;
    try {
      const resp = await fetch(`${API}${base}?path=${encodeURIComponent(path)}`);
      if (!resp.ok) throw new Error((await resp.json().catch(() => ({}))).message || resp.statusText);
      text = await resp.text();
    } catch (e) { if (alive) replace(pane, errorBox(e, `Could not open ${path}`)); return; }
    if (!alive) return;
    const dirty = h('span', { class: 'muted', hidden: true }, 'Unsaved changes');
    const isYaml = /\.ya?ml$/i.test(path);
    const editor = createCodeEditor({ value: text, label: `Content of ${path}`, flow: false, yamlMode: isYaml, onChange: () => { dirty.hidden = !editor.differsFrom(current.saved); }, onSave: () => save() });
    if (current) current.editor.destroy();
    current = { path, editor, saved: text };
    async function save() {
      const value = editor.value;
      try {
        await put(path, new Blob([value], { type: 'text/plain' }));
        current.saved = value;
        dirty.hidden = true;
        toast(`Saved ${path}`, 'success');
      } catch (e) { toast(`Saving ${path} failed: ${e.message}`, 'error', 10000); }
    }
    replace(pane, h('div', { class: 'page-head' }, h('h2', { class: 'mono' }, path), h('span', { class: 'spacer' }), dirty,
      h('button', { type: 'button', class: 'primary', onclick: save }, 'Save file')), editor.element);
  }

  async function newEntry(folder) {
    const name = await askName(folder ? 'New folder' : 'New file', `Path in ${selectedDir()}`);
    if (!name) return;
    const path = name.startsWith('/') ? name : join(selectedDir(), name);
    try {
      if (folder) await api(`${base}/directory`, { method: 'POST', query: { path } });
      else await put(path, new Blob([''], { type: 'text/plain' }));
      refresh();
      if (!folder) open(path);
    } catch (e) { toast(`Could not create ${path}: ${e.message}`, 'error', 10000); }
  }

  async function rename(path) {
    const to = await askName(`Rename ${path}`, 'New path', path);
    if (!to || to === path) return;
    try {
      await api(base, { method: 'PUT', query: { from: path, to: to.startsWith('/') ? to : join(parentOf(path), to) } });
      toast(`Moved ${path}`, 'success');
      if (current && current.path === path) { current.editor.destroy(); current = null; replace(pane, h('p', { class: 'muted' }, 'Select a file to edit it.')); }
      refresh();
    } catch (e) { toast(`Could not move ${path}: ${e.message}`, 'error', 10000); }
  }

  function remove(path, isDir) {
    confirmDialog(`Delete ${path}?`, isDir ? `The folder ${path} and everything in it are deleted.` : `The file ${path} is deleted.`, 'Delete', async () => {
      await api(base, { method: 'DELETE', query: { path } });
      toast(`Deleted ${path}`, 'success');
      if (current && (current.path === path || current.path.startsWith(`${path}/`))) { current.editor.destroy(); current = null; replace(pane, h('p', { class: 'muted' }, 'Select a file to edit it.')); }
      refresh();
    }, { danger: true });
  }

  refresh();
  return () => { alive = false; if (current) current.editor.destroy(); };
}
