// YAML editor: a transparent <textarea> over a syntax-highlighted <pre>, line-number gutter and
// per-line error markers. Plus locatePath(): which line a validation path (tasks[0].message) names.
import { h, replace } from './util.js';

function esc(s) { return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'); }

/** Highlight one scalar/value fragment: expressions, strings, numbers, booleans. */
function hlValue(v) {
  if (!v) return '';
  const parts = [];
  let i = 0;
  const re = /\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g;
  let m;
  while ((m = re.exec(v))) {
    if (m.index > i) parts.push(hlPlain(v.slice(i, m.index)));
    parts.push(`<span class="hl-expr">${esc(m[0])}</span>`);
    i = m.index + m[0].length;
  }
  if (i < v.length) parts.push(hlPlain(v.slice(i)));
  return parts.join('');
}
function hlPlain(v) {
  const t = v.trim();
  if (/^(["']).*\1$/.test(t)) return `<span class="hl-str">${esc(v)}</span>`;
  if (/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(t)) return `<span class="hl-num">${esc(v)}</span>`;
  if (/^(true|false|null|~|yes|no)$/i.test(t)) return `<span class="hl-bool">${esc(v)}</span>`;
  if (/^[|>][-+]?\d*$/.test(t)) return `<span class="hl-punct">${esc(v)}</span>`;
  return esc(v);
}

/** Split a line into (code, comment): a '#' starts a comment at line start or after a space, outside quotes. */
function splitComment(line) {
  let q = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) { if (c === q) q = null; continue; }
    if ((c === '"' || c === "'") && (i === 0 || /[\s:\-[{,]/.test(line[i - 1]))) { q = c; continue; }
    if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return [line.slice(0, i), line.slice(i)];
  }
  return [line, ''];
}

/** HTML for a YAML source; lines in `errorLines` (1-based) are marked. Block scalars are kept plain. */
export function highlightYaml(src, errorLines = new Map()) {
  const lines = src.split('\n');
  const out = [];
  let blockIndent = -1; // indentation of the key owning a block scalar (| or >) we are inside
  lines.forEach((line, idx) => {
    const indent = line.length - line.trimStart().length;
    let html;
    if (blockIndent >= 0 && (line.trim() === '' || indent > blockIndent)) {
      html = `<span class="hl-str">${esc(line)}</span>`;
    } else {
      blockIndent = -1;
      const [code, comment] = splitComment(line);
      let rest = code;
      let pre = '';
      const lead = /^(\s*)((?:-\s+)*)/.exec(rest);
      pre += esc(lead[1]);
      if (lead[2]) pre += `<span class="hl-punct">${esc(lead[2])}</span>`;
      rest = rest.slice(lead[0].length);
      if (/^(---|\.\.\.)\s*$/.test(code)) {
        html = `<span class="hl-doc">${esc(code)}</span>`;
      } else {
        const km = /^("[^"]*"|'[^']*'|[^\s#'"{[][^:#]*?)(\s*:)(\s|$)(.*)$/.exec(rest);
        if (km) {
          html = `${pre}<span class="hl-key">${esc(km[1])}</span><span class="hl-punct">${esc(km[2])}</span>${esc(km[3])}${hlValue(km[4])}`;
          if (/^[|>][-+]?\d*\s*$/.test(km[4].trim())) blockIndent = indent + (lead[2] ? lead[2].length : 0);
        } else {
          html = pre + hlValue(rest);
        }
      }
      if (comment) html += `<span class="hl-com">${esc(comment)}</span>`;
    }
    const err = errorLines.get(idx + 1);
    out.push(`<span class="ln${err ? ' err' : ''}"${err ? ` title="${esc(err)}"` : ''}>${html || ' '}</span>`);
  });
  return out.join('');
}

//// Path → line

function entries(lines) {
  // One entry per "- " list marker and per "key:" on each line, with its column.
  const out = [];
  let blockCol = -1;
  lines.forEach((raw, i) => {
    const line = splitComment(raw)[0];
    if (!line.trim()) return;
    const indent = line.length - line.trimStart().length;
    if (blockCol >= 0 && indent > blockCol) return;
    blockCol = -1;
    let col = indent;
    let rest = line.slice(indent);
    while (/^-(\s|$)/.test(rest)) {
      out.push({ line: i + 1, col, item: true });
      const m = /^-\s*/.exec(rest);
      col += m[0].length;
      rest = rest.slice(m[0].length);
    }
    const km = /^("[^"]*"|'[^']*'|[^\s#'"{[][^:#]*?)\s*:(\s|$)(.*)$/.exec(rest);
    if (km) {
      out.push({ line: i + 1, col, key: km[1].replace(/^["']|["']$/g, '') });
      if (/^[|>][-+]?\d*\s*$/.test(km[3].trim())) blockCol = col;
    }
  });
  return out;
}

/** Tokens of a path like `tasks[0].then[1].message` or `inputs.0.id` → ['tasks', 0, 'then', 1, 'message']. */
export function pathTokens(path) {
  const toks = [];
  for (const part of path.split('.')) {
    const re = /([^[\]]+)|\[(\d+)\]/g;
    let m;
    while ((m = re.exec(part))) {
      if (m[2] !== undefined) toks.push(+m[2]);
      else if (/^\d+$/.test(m[1])) toks.push(+m[1]);
      else toks.push(m[1]);
    }
  }
  return toks;
}

/** Best line (1-based) for a path in a YAML source: the deepest token found. */
export function locatePath(src, path) {
  const ents = entries(src.split('\n'));
  let lo = 0, hi = ents.length; // entries range of the current node
  let baseCol = -1;
  let line = 0;
  for (const tok of pathTokens(path)) {
    // children: entries in range with col > baseCol; the child column is the smallest such column
    let childCol = Infinity;
    for (let i = lo; i < hi; i++) if (ents[i].col > baseCol) childCol = Math.min(childCol, ents[i].col);
    if (childCol === Infinity) break;
    let found = -1;
    if (typeof tok === 'number') {
      let n = -1;
      for (let i = lo; i < hi; i++) {
        if (ents[i].col === childCol && ents[i].item) { n += 1; if (n === tok) { found = i; break; } }
      }
    } else {
      for (let i = lo; i < hi; i++) if (ents[i].col === childCol && ents[i].key === tok) { found = i; break; }
    }
    if (found < 0) break;
    let end = found + 1;
    while (end < hi && !(ents[end].col <= childCol)) end += 1;
    line = ents[found].line;
    lo = found + 1; hi = end; baseCol = childCol;
    if (typeof tok === 'number') {
      // keys of the item's mapping may sit on the item's own line: include them (their col > childCol)
      lo = found + 1;
    }
  }
  return line;
}

/**
 * Map a validation message to (line, text). Messages carry either "line N" (YAML syntax errors)
 * or a leading property path ("tasks[0].message: must not be null").
 */
export function messageLine(src, message) {
  const lm = /line[:\s]+(\d+)/i.exec(message);
  if (lm) return +lm[1];
  const pm = /^\s*([A-Za-z_][\w.-]*(?:\[\d+\][\w.-]*)*(?:\.[\w-]+|\[\d+\])*)\s*:/.exec(message);
  if (pm) {
    const l = locatePath(src, pm[1]);
    if (l) return l;
  }
  const im = /(?:task|id)\s+[`'"]([\w.-]+)[`'"]/i.exec(message);
  if (im) {
    const re = new RegExp(`^\\s*(?:-\\s+)?id:\\s*["']?${im[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?\\s*$`, 'm');
    const mm = re.exec(src);
    if (mm) return src.slice(0, mm.index).split('\n').length;
  }
  return 0;
}

/** Indentation of the line after `line` (Enter): the line's own, under the key of a list item
 * (`  - id: x` → 4 spaces), two more after a `key:` opening a block. */
export function nextLineIndent(line) {
  const m = /^(\s*)((?:-\s+)*)/.exec(line);
  let ind = m[1] + (m[2] && line.slice(m[0].length).trim() ? ' '.repeat(m[2].length) : '');
  if (/:\s*$/.test(splitComment(line)[0])) ind += '  ';
  return ind;
}

/**
 * Create an editor. Options: value, label, onChange(value), onSave().
 * Returns {element, textarea, value (get/set), setMarkers(Map line→message), goToLine(n)}.
 */
export function createEditor({ value = '', label = 'Flow YAML source', onChange, onSave } = {}) {
  const gutter = h('div', { class: 'gutter', 'aria-hidden': 'true' });
  const pre = h('pre', { 'aria-hidden': 'true' });
  const ta = h('textarea', {
    spellcheck: 'false', autocapitalize: 'off', autocomplete: 'off', 'aria-label': label,
    'aria-describedby': 'editor-help', wrap: 'off', dataset: { testid: 'yaml-editor' },
  });
  ta.value = value;
  const element = h('div', { class: 'editor-wrap' },
    h('div', { class: 'editor' }, gutter, h('div', { class: 'code' }, pre, ta)),
    h('p', { id: 'editor-help', class: 'muted', style: { fontSize: '12px', margin: '4px 0 0' } },
      'Tab indents; press Esc then Tab to leave the editor. Ctrl+S saves.'));
  let markers = new Map();
  let escaped = false;

  function draw() {
    const src = ta.value;
    pre.innerHTML = highlightYaml(src, markers) + '\n';
    const n = src.split('\n').length;
    const frag = document.createDocumentFragment();
    for (let i = 1; i <= n; i++) {
      const m = markers.get(i);
      const d = document.createElement('div');
      d.textContent = String(i);
      if (m) { d.className = 'err'; d.title = m; }
      frag.appendChild(d);
    }
    replace(gutter, frag);
    sync();
  }
  function sync() {
    pre.scrollTop = ta.scrollTop; pre.scrollLeft = ta.scrollLeft; gutter.scrollTop = ta.scrollTop;
  }
  ta.addEventListener('scroll', sync);
  ta.addEventListener('input', () => { draw(); if (onChange) onChange(ta.value); });
  ta.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 's') { e.preventDefault(); if (onSave) onSave(); return; }
    if (e.key === 'Escape') { escaped = true; return; }
    if (e.key === 'Tab' && !escaped && !e.ctrlKey && !e.altKey) {
      e.preventDefault();
      const { selectionStart: s, selectionEnd: en, value: v } = ta;
      if (e.shiftKey) {
        const ls = v.lastIndexOf('\n', s - 1) + 1;
        if (v.slice(ls, ls + 2) === '  ') { ta.setRangeText('', ls, ls + 2, 'end'); ta.selectionStart = ta.selectionEnd = Math.max(ls, s - 2); }
      } else {
        ta.setRangeText('  ', s, en, 'end');
      }
      ta.dispatchEvent(new Event('input'));
      return;
    }
    if (e.key === 'Enter' && !e.shiftKey && !e.ctrlKey) {
      const { selectionStart: s, value: v } = ta;
      const ls = v.lastIndexOf('\n', s - 1) + 1;
      const ind = nextLineIndent(v.slice(ls, s));
      if (ind) { e.preventDefault(); ta.setRangeText('\n' + ind, s, ta.selectionEnd, 'end'); ta.dispatchEvent(new Event('input')); }
    }
    escaped = false;
  });
  draw();
  return {
    element, textarea: ta,
    get value() { return ta.value; },
    set value(v) { ta.value = v; draw(); },
    setMarkers(m) { markers = m; draw(); },
    goToLine(n) {
      const lines = ta.value.split('\n');
      const pos = lines.slice(0, Math.max(0, n - 1)).reduce((a, l) => a + l.length + 1, 0);
      ta.focus();
      ta.setSelectionRange(pos, pos + (lines[n - 1] || '').length);
      ta.scrollTop = Math.max(0, (n - 5) * 20);
      sync();
    },
  };
}
