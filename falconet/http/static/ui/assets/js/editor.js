// Where validation messages point in a YAML source: locatePath() (which line a validation path such as
// tasks[0].message names) and messageLine(). The editor itself is codeeditor.js.

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
