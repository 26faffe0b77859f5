// Line diff (LCS) between two texts, drawn as a unified diff with context.
import { h } from './util.js';

/** Edit script: [{op: ' '|'+'|'-', a: lineNoA|null, b: lineNoB|null, text}]; removals before additions. */
export function diffLines(aText, bText) {
  const a = aText.split('\n'), b = bText.split('\n');
  // Trim common prefix/suffix so the quadratic table only covers the changed middle.
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const am = a.slice(pre, a.length - suf), bm = b.slice(pre, b.length - suf);
  const n = am.length, m = bm.length;
  const ops = [];
  for (let i = 0; i < pre; i++) ops.push({ op: ' ', a: i + 1, b: i + 1, text: a[i] });
  if (n * m > 4e6) { // too big for a table: show as replace
    am.forEach((t, i) => ops.push({ op: '-', a: pre + i + 1, b: null, text: t }));
    bm.forEach((t, i) => ops.push({ op: '+', a: null, b: pre + i + 1, text: t }));
  } else {
    const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i][j] = am[i] === bm[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && am[i] === bm[j]) { ops.push({ op: ' ', a: pre + i + 1, b: pre + j + 1, text: am[i] }); i++; j++; }
      else if (i < n && (j === m || L[i + 1][j] >= L[i][j + 1])) { ops.push({ op: '-', a: pre + i + 1, b: null, text: am[i] }); i++; }
      else { ops.push({ op: '+', a: null, b: pre + j + 1, text: bm[j] }); j++; }
    }
  }
  for (let k = 0; k < suf; k++) ops.push({ op: ' ', a: a.length - suf + k + 1, b: b.length - suf + k + 1, text: a[a.length - suf + k] });
  // as every unified diff reads: in each run of changes, the removed lines before the added ones
  for (let k = 0; k < ops.length;) {
    let e = k;
    while (e < ops.length && ops[e].op !== ' ') e++;
    if (e > k + 1) ops.splice(k, e - k, ...ops.slice(k, e).filter((o) => o.op === '-'), ...ops.slice(k, e).filter((o) => o.op === '+'));
    k = e + 1;
  }
  return ops;
}

export function renderDiff(aText, bText, { context = 3, labelA = 'before', labelB = 'after' } = {}) {
  const ops = diffLines(aText, bText);
  const changed = ops.map((o) => o.op !== ' ');
  const added = ops.filter((o) => o.op === '+').length, removed = ops.filter((o) => o.op === '-').length;
  const keep = ops.map((_, i) => {
    for (let k = Math.max(0, i - context); k <= Math.min(ops.length - 1, i + context); k++) if (changed[k]) return true;
    return false;
  });
  const rows = [];
  let skipped = 0;
  ops.forEach((o, i) => {
    if (!keep[i]) { skipped++; return; }
    if (skipped) { rows.push(h('div', { class: 'gap' }, h('span', { class: 'n' }), h('span', { class: 'n' }), h('span'), h('span', null, `… ${skipped} unchanged line${skipped > 1 ? 's' : ''}`))); skipped = 0; }
    rows.push(h('div', { class: o.op === '+' ? 'add' : o.op === '-' ? 'del' : '' },
      h('span', { class: 'n' }, o.a ?? ''), h('span', { class: 'n' }, o.b ?? ''), h('span', { 'aria-hidden': 'true' }, o.op), h('span', null, o.text)));
  });
  if (skipped) rows.push(h('div', { class: 'gap' }, h('span', { class: 'n' }), h('span', { class: 'n' }), h('span'), h('span', null, `… ${skipped} unchanged lines`)));
  return h('div', null,
    h('p', { class: 'muted', 'aria-live': 'polite' }, added || removed ? `${labelA} → ${labelB}: ${added} line(s) added, ${removed} removed` : `${labelA} and ${labelB} are identical`),
    h('div', { class: 'diff', role: 'region', 'aria-label': `Diff ${labelA} to ${labelB}`, tabindex: '0' }, rows));
}
