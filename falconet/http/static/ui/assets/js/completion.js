// Completion of the flow editor: task/trigger/condition types, the properties of the type around the
// cursor, `{{ }}` variables (inputs, outputs of earlier tasks, execution, flow, trigger, vars, labels…),
// Pebble functions and filters. Plugin data comes from a switchable source (setSchemaSource): today the
// plugin docs (GET /api/v1/plugins and /plugins/{type}).
import { getJson } from './api.js';
import { loadPluginDoc, typeAtLine } from './plugindocs.js';

/** Pebble filters of falconet/runtime/expr (registry FILTERS, without the one-letter aliases `d` and `e`). */
export const PEBBLE_FILTERS = [
  'abbreviate', 'abs', 'base64decode', 'base64encode', 'capitalize', 'chunk', 'className', 'date', 'dateAdd',
  'default', 'distinct', 'endsWith', 'escape', 'escapeChar', 'first', 'flatten', 'indent', 'join', 'jq', 'json',
  'jsonEncode', 'keys', 'last', 'length', 'lower', 'md5', 'merge', 'nindent', 'number', 'numberFormat',
  'numberformat', 'raw', 'replace', 'reverse', 'rsort', 'sha1', 'sha256', 'sha512', 'slice', 'slugify', 'sort',
  'split', 'startsWith', 'string', 'substringAfter', 'substringAfterLast', 'substringBefore',
  'substringBeforeLast', 'timestamp', 'timestampMicro', 'timestampMilli', 'timestampNano', 'title', 'toIon',
  'toJson', 'trim', 'upper', 'urldecode', 'urlencode', 'values', 'yaml',
];

/** Pebble functions of falconet/runtime/expr/functions.py (registry FUNCTIONS). */
export const PEBBLE_FUNCTIONS = [
  'currentEachOutput', 'decrypt', 'encrypt', 'errorLogs', 'fetchContext', 'fileSize', 'fileURI', 'fromIon',
  'fromJson', 'id', 'ionDecode', 'json', 'jsonDecode', 'kv', 'max', 'min', 'now', 'printContext', 'randomInt',
  'range', 'read', 'render', 'renderOnce', 'secret', 'uuid', 'yaml',
];

/** Top-level properties of a flow (Kestra's Flow model). */
export const FLOW_KEYS = [
  'id', 'namespace', 'description', 'labels', 'inputs', 'variables', 'tasks', 'errors', 'finally',
  'afterExecution', 'triggers', 'pluginDefaults', 'concurrency', 'outputs', 'retry', 'disabled', 'sla',
  'workerGroup', 'revision',
];

/** Run-time variables every execution has (Kestra's RunVariables). */
const ROOT_VARS = {
  inputs: 'the inputs of the execution', outputs: 'the outputs of earlier tasks', execution: 'this execution',
  flow: 'this flow', trigger: 'the trigger that started the execution', vars: 'the flow variables',
  labels: 'the execution labels', taskrun: 'the current task run', task: 'the current task',
  parent: 'the enclosing flowable task run', parents: 'every enclosing task run', envs: 'environment variables',
  globals: 'global variables', error: 'the error of an errors branch',
};
const MEMBERS = {
  execution: ['id', 'startDate', 'state', 'originalId'],
  flow: ['id', 'namespace', 'revision', 'tenantId'],
  taskrun: ['id', 'startDate', 'attemptsCount', 'parentId', 'value', 'iteration'],
  task: ['id', 'type'],
  parent: ['taskrun', 'outputs'],
  error: ['taskId', 'message', 'stackTrace'],
};
/** Trigger variables by trigger type, used while a type's documentation declares no outputs (Kestra's docs). */
const TRIGGER_VARS = {
  'io.kestra.plugin.core.trigger.Schedule': ['date', 'next', 'previous'],
  'io.kestra.plugin.core.trigger.Flow': ['executionId', 'namespace', 'flowId', 'flowRevision', 'state', 'outputs'],
  'io.kestra.plugin.core.trigger.Webhook': ['body', 'headers', 'parameters'],
};

//// Plugin data sources

/** Plugin data from the plugin docs: types from GET /plugins, properties and outputs from GET /plugins/{type}. */
export const pluginDocsSource = {
  async types() {
    const groups = await getJson('/plugins');
    const out = { tasks: [], triggers: [], conditions: [], aliases: [] };
    for (const g of groups || []) for (const k of Object.keys(out)) out[k].push(...(g[k] || []));
    return out;
  },
  async describe(type) {
    const doc = await loadPluginDoc(type);
    const schema = (doc && doc.schema) || {};
    return {
      title: doc.title || (schema.properties && schema.properties.title) || '',
      properties: (schema.properties && schema.properties.properties) || {},
      required: (schema.properties && schema.properties.required) || [],
      outputs: (schema.outputs && schema.outputs.properties) || {},
    };
  },
};

let source = pluginDocsSource;
let typesPromise = null;
const described = new Map();

/**
 * Switch the plugin data: an object with async types() → {tasks, triggers, conditions, aliases?} (type
 * names) and describe(type) → {title, properties, required, outputs} (JSON-schema property maps), as
 * pluginDocsSource.
 */
export function setSchemaSource(s) { source = s; typesPromise = null; described.clear(); }

function loadTypes() {
  if (!typesPromise) {
    typesPromise = source.types();
    typesPromise.catch(() => { typesPromise = null; });
  }
  return typesPromise;
}

/** The description of a known type (canonical or alias), null for a type the server does not have. */
async function describe(type) {
  const types = await loadTypes();
  const known = [...types.tasks, ...types.triggers, ...types.conditions, ...(types.aliases || [])];
  if (!known.includes(type)) return null;
  if (!described.has(type)) {
    const p = source.describe(type);
    p.catch(() => described.delete(type));
    described.set(type, p);
  }
  return described.get(type);
}

//// Reading the YAML around the cursor

function indentOf(line) { return line.length - line.trimStart().length; }

/** The key of the nearest list/mapping holding line `n` (0-based) whose content starts left of `col`. */
function parentKey(lines, n, col) {
  for (let i = n - 1; i >= 0; i--) {
    const l = lines[i];
    if (!l.trim() || /^\s*#/.test(l)) continue;
    const ind = indentOf(l);
    const content = ind + (/^\s*((?:-\s+)*)/.exec(l)[1] || '').length;
    if (ind < col || (content < col && ind <= col)) {
      const m = /^\s*(?:-\s+)*([\w.-]+)\s*:/.exec(l);
      if (ind < col && m) return { key: m[1], line: i };
      if (ind < col) col = ind;
    }
  }
  return null;
}

/** Which kind of plugin a `type:` at line n (0-based) names: tasks, triggers or conditions. */
function kindAt(lines, n) {
  const l = lines[n];
  const col = indentOf(l);
  const p = parentKey(lines, n, col + 1);
  // the item's own "- id:" may sit on the line above at the same indent: climb from the item start
  let cur = p;
  for (let guard = 0; cur && guard < 50; guard++) {
    if (cur.key === 'triggers') return 'triggers';
    if (cur.key === 'conditions') return 'conditions';
    if (/^(tasks|errors|finally|afterExecution|then|else|cases)$/.test(cur.key)) return 'tasks';
    cur = parentKey(lines, cur.line, indentOf(lines[cur.line]));
  }
  return 'tasks';
}

/** ids of the tasks declared before `pos`, without the tasks around it (the outputs an expression there can use). */
function earlierTaskIds(text, pos) {
  const lines = text.slice(0, pos).split('\n');
  const found = []; // {id, indent}
  let section = '';
  for (const l of lines) {
    const top = /^([\w-]+)\s*:/.exec(l);
    if (top) section = top[1];
    const m = /^(\s*)-\s+id:\s*["']?([\w-]+)/.exec(l);
    if (m && !/^(inputs|triggers|outputs)$/.test(section)) found.push({ id: m[2], indent: m[1].length });
  }
  // the tasks enclosing the cursor: climbing from its line, each "- id:" left of the last one
  const enclosing = new Set();
  let col = indentOf(lines[lines.length - 1]);
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^(\s*)-\s+id:\s*["']?([\w-]+)/.exec(lines[i]);
    if (m && m[1].length < col) { enclosing.add(m[2]); col = m[1].length; }
    else if (lines[i].trim() && indentOf(lines[i]) < col && !/^\s*-/.test(lines[i])) col = Math.min(col, indentOf(lines[i]) + 1);
  }
  return [...new Set(found.map((f) => f.id))].filter((id) => !enclosing.has(id));
}

/** ids of the flow's inputs. */
function inputIds(text) {
  const m = /^inputs:\s*\n((?:[ \t]+.*\n?|\s*\n)*)/m.exec(text);
  if (!m) return [];
  const ids = [];
  const re = /^\s*-\s+id:\s*["']?([\w.-]+)/gm;
  let x;
  while ((x = re.exec(m[1]))) ids.push(x[1]);
  return ids;
}

/** Keys of a top-level mapping (variables:, labels:). */
function topMapKeys(text, name) {
  const m = new RegExp(`^${name}:\\s*\\n((?:[ \\t]+.*\\n?|\\s*\\n)*)`, 'm').exec(text);
  if (!m) return [];
  const body = m[1].split('\n').filter((l) => l.trim());
  if (!body.length) return [];
  const ind = indentOf(body[0]);
  return body.filter((l) => indentOf(l) === ind).map((l) => /^\s*([\w.-]+)\s*:/.exec(l)).filter(Boolean).map((x) => x[1]);
}

/** Trigger types declared by the flow. */
function triggerTypes(text) {
  const m = /^triggers:\s*\n((?:[ \t]+.*\n?|\s*\n)*)/m.exec(text);
  if (!m) return [];
  return [...m[1].matchAll(/^\s*(?:-\s+)?type:\s*["']?([\w.]+)/gm)].map((x) => x[1]);
}

/** The type of the task with id `id`. */
function typeOfTask(text, id) {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => new RegExp(`^\\s*(?:-\\s+)?id:\\s*["']?${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?\\s*$`).test(l));
  return i < 0 ? null : typeAtLine(text, i + 1);
}

//// The completion source

const opt = (label, type, detail, info) => ({ label, type, detail, info });

async function expressionOptions(text, pos, path) {
  const parts = path.split('.');
  const prefix = parts.pop();
  const head = parts;
  if (!head.length) {
    return [
      ...Object.entries(ROOT_VARS).map(([k, d]) => opt(k, 'variable', d)),
      ...PEBBLE_FUNCTIONS.map((f) => ({ label: `${f}()`, type: 'function', apply: `${f}(`, detail: 'function' })),
    ];
  }
  const [root, second] = head;
  if (head.length === 1) {
    if (root === 'inputs') return inputIds(text).map((id) => opt(id, 'property', 'input'));
    if (root === 'outputs') return earlierTaskIds(text, pos).map((id) => opt(id, 'property', 'task outputs'));
    if (root === 'vars') return topMapKeys(text, 'variables').map((k) => opt(k, 'property', 'variable'));
    if (root === 'labels') return topMapKeys(text, 'labels').map((k) => opt(k, 'property', 'label'));
    if (root === 'trigger') {
      const names = new Set();
      for (const t of triggerTypes(text)) {
        const d = await describe(t).catch(() => null);
        const outs = d ? Object.keys(d.outputs) : [];
        for (const n of outs.length ? outs : (TRIGGER_VARS[t] || [])) names.add(n);
      }
      return [...names].map((n) => opt(n, 'property', 'trigger variable'));
    }
    if (MEMBERS[root]) return MEMBERS[root].map((n) => opt(n, 'property', root));
    return [];
  }
  if (head.length === 2 && root === 'outputs') {
    const type = typeOfTask(text, second);
    const d = type ? await describe(type).catch(() => null) : null;
    return d ? Object.entries(d.outputs).map(([n, s]) => opt(n, 'property', s.type || 'output', s.description || s.title)) : [];
  }
  return [];
}

/** Completions at `pos` of `text`: {from, options, validFor} or null. Pure apart from the plugin data. */
export async function completeAt(text, pos, explicit = false) {
  const lineStart = text.lastIndexOf('\n', pos - 1) + 1;
  const before = text.slice(lineStart, pos);
  // inside {{ … }}
  const open = before.lastIndexOf('{{');
  if (open >= 0 && before.indexOf('}}', open) < 0) {
    const expr = before.slice(open + 2);
    const fm = /\|\s*(\w*)$/.exec(expr);
    if (fm) {
      return { from: pos - fm[1].length, options: PEBBLE_FILTERS.map((f) => opt(f, 'function', 'filter')), validFor: /^\w*$/ };
    }
    const pm = /([A-Za-z_][\w]*(?:\.[\w-]*)*|)$/.exec(expr);
    const path = pm[1];
    if (/\.\w*$/.test(path) || path || explicit || /\{\{\s*$/.test(before)) {
      const last = path.split('.').pop();
      const options = await expressionOptions(text, pos, path);
      return options.length ? { from: pos - last.length, options, validFor: /^[\w-]*$/ } : null;
    }
    return null;
  }
  const lines = text.slice(0, pos).split('\n');
  const n = lines.length - 1;
  const all = text.split('\n');
  // value of type:
  const tm = /^(\s*(?:-\s+)?)type:\s*["']?([\w.]*)$/.exec(before);
  if (tm) {
    const types = await loadTypes();
    const kind = kindAt(all, n);
    const list = types[kind] && types[kind].length ? types[kind] : types.tasks;
    return { from: pos - tm[2].length, options: list.map((t) => opt(t, 'class', kind.replace(/s$/, ''))), validFor: /^[\w.]*$/ };
  }
  // a key
  const km = /^(\s*)(-\s+)?([\w-]*)$/.exec(before);
  if (km && (km[3] || explicit || km[2])) {
    const col = km[1].length + (km[2] ? km[2].length : 0);
    if (col === 0) {
      return { from: pos - km[3].length, options: FLOW_KEYS.map((k) => opt(k, 'keyword', 'flow')), validFor: /^[\w-]*$/ };
    }
    const line = n + 1;
    // the mapping this key joins: the line's own mapping, so a type on a sibling line applies
    const probe = all.slice();
    probe[n] = `${' '.repeat(col)}${km[3] || 'x'}: x`;
    const type = typeAtLine(probe.join('\n'), line);
    const present = siblingKeys(all, n, col);
    if (type) {
      const d = await describe(type).catch(() => null);
      if (!d) return null;
      const req = new Set(d.required);
      const options = Object.entries(d.properties).filter(([k]) => !present.has(k) || k === km[3])
        .map(([k, s]) => ({ label: k, type: 'property', detail: req.has(k) ? 'required' : (s.type || ''), info: s.description || s.title, boost: req.has(k) ? 1 : 0, apply: `${k}: ` }));
      return options.length ? { from: pos - km[3].length, options, validFor: /^[\w-]*$/ } : null;
    }
    const parent = parentKey(all, n, col);
    if (parent && /^(tasks|errors|finally|afterExecution|triggers|then|else|conditions)$/.test(parent.key)) {
      const options = ['id', 'type'].filter((k) => !present.has(k)).map((k) => ({ label: k, type: 'property', detail: 'required', apply: `${k}: ` }));
      return options.length ? { from: pos - km[3].length, options, validFor: /^[\w-]*$/ } : null;
    }
  }
  return null;
}

/** Keys already set in the mapping of line n (0-based) whose keys start at column col. */
function siblingKeys(lines, n, col) {
  const keys = new Set();
  const scan = (i) => {
    const l = lines[i];
    if (!l.trim()) return true;
    const ind = indentOf(l);
    const lead = /^\s*((?:-\s+)*)/.exec(l)[1].length;
    if (ind + lead === col) {
      const m = /^\s*(?:-\s+)?([\w-]+)\s*:/.exec(l);
      if (m) keys.add(m[1]);
      return !(lead && i !== n); // a new list item ends the mapping
    }
    return ind > col;
  };
  for (let i = n - 1; i >= 0 && scan(i); i--) { if (/^\s*-\s/.test(lines[i]) && indentOf(lines[i]) < col) break; }
  for (let i = n + 1; i < lines.length; i++) { if (/^\s*-\s/.test(lines[i]) && indentOf(lines[i]) + 2 <= col) break; if (!scan(i)) break; }
  return keys;
}

/** A CodeMirror completion source over completeAt. */
export function flowCompletionSource(context) {
  const text = context.state.doc.toString();
  return completeAt(text, context.pos, context.explicit);
}
