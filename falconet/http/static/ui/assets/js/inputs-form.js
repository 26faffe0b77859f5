// A form generated from Kestra inputs (its Input types): one fitting control per type, a label that
// names the input id (and displayName), defaults pre-filled, dependsOn respected, and Kestra's
// validation messages shown at the field they name. Used for Execute (flow inputs) and Resume
// (a Pause task's onResume inputs).
import { h, replace, uid, debounce } from './util.js';

const TEXTAREA_TYPES = new Set(['JSON', 'YAML', 'ARRAY']);

function defaultText(input) {
  const d = input.defaults !== undefined ? input.defaults : input.prefill;
  if (d === undefined || d === null) return '';
  if (typeof d === 'string') return d;
  if (input.type === 'YAML' && typeof d === 'object') return JSON.stringify(d, null, 2);
  return typeof d === 'object' ? JSON.stringify(d, null, 2) : String(d);
}

function isoToLocalInput(iso) {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const d = new Date(t);
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function optionValues(input) {
  const v = input.values || input.options;
  return Array.isArray(v) ? v.map(String) : [];
}

//// A tiny evaluator for dependsOn conditions: {{ inputs.a == 'x' and not inputs.b }}.
// Anything it does not understand throws, and the caller treats the condition as "unknown" (enabled).

function tokenize(src) {
  const toks = [];
  const re = /\s*(?:(\d+(?:\.\d+)?)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)"|(==|!=|>=|<=|&&|\|\||[()!<>])|([A-Za-z_][\w.]*))/y;
  let m;
  re.lastIndex = 0;
  while (re.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(re.lastIndex))) break;
    m = re.exec(src);
    if (!m) throw new Error('unsupported');
    if (m[1] !== undefined) toks.push({ t: 'v', v: Number(m[1]) });
    else if (m[2] !== undefined) toks.push({ t: 'v', v: m[2] });
    else if (m[3] !== undefined) toks.push({ t: 'v', v: m[3] });
    else if (m[4] !== undefined) toks.push({ t: 'op', v: m[4] });
    else toks.push({ t: 'id', v: m[5] });
  }
  return toks;
}

export function evalCondition(cond, values) {
  let src = String(cond).trim();
  const m = /^\{\{([\s\S]*)\}\}$/.exec(src);
  if (m) src = m[1];
  if (/\{\{|\}\}/.test(src)) throw new Error('unsupported');
  const toks = tokenize(src);
  let i = 0;
  const peek = () => toks[i];
  const isOp = (v) => peek() && ((peek().t === 'op' && peek().v === v) || (peek().t === 'id' && peek().v === v));
  const truthy = (v) => !(v === false || v === null || v === undefined || v === '' || v === 0 || (Array.isArray(v) && !v.length));
  function primary() {
    const t = toks[i++];
    if (!t) throw new Error('unsupported');
    if (t.t === 'op' && t.v === '(') { const v = or(); if (!isOp(')')) throw new Error('unsupported'); i++; return v; }
    if (t.t === 'v') return t.v;
    if (t.t === 'id') {
      if (t.v === 'true') return true;
      if (t.v === 'false') return false;
      if (t.v === 'null') return null;
      const parts = t.v.split('.');
      if (parts[0] !== 'inputs' || parts.length < 2) throw new Error('unsupported');
      return values[parts.slice(1).join('.')];
    }
    throw new Error('unsupported');
  }
  function cmp() {
    const a = primary();
    for (const op of ['==', '!=', '>=', '<=', '>', '<']) {
      if (isOp(op)) {
        i++;
        const b = primary();
        // eslint-disable-next-line eqeqeq
        if (op === '==') return a == b || String(a) === String(b);
        if (op === '!=') return !(a == b || String(a) === String(b)); // eslint-disable-line eqeqeq
        if (op === '>=') return a >= b; if (op === '<=') return a <= b; if (op === '>') return a > b; return a < b;
      }
    }
    return a;
  }
  function not() { if (isOp('not') || isOp('!')) { i++; return !truthy(not()); } return cmp(); }
  function and() { let v = not(); while (isOp('and') || isOp('&&')) { i++; const r = not(); v = truthy(v) && truthy(r); } return v; }
  function or() { let v = and(); while (isOp('or') || isOp('||')) { i++; const r = and(); v = truthy(v) || truthy(r); } return v; }
  const v = or();
  if (i !== toks.length) throw new Error('unsupported');
  return truthy(v);
}

//// Fields

function buildControl(input, id, describedBy) {
  const type = (input.type || 'STRING').toUpperCase();
  const common = { id, name: input.id, 'aria-describedby': describedBy, 'aria-required': input.required !== false ? 'true' : null };
  const dflt = defaultText(input);
  let control; let read; let extra = null;
  switch (type) {
    case 'INT':
    case 'FLOAT':
      control = h('input', { ...common, type: 'number', step: type === 'INT' ? '1' : 'any', min: input.min, max: input.max, value: dflt, inputmode: type === 'INT' ? 'numeric' : 'decimal' });
      read = () => control.value.trim();
      break;
    case 'BOOLEAN': { // true, false or unset (Kestra's three radio buttons): an optional one may stay unset
      const name = uid('bool');
      const current = dflt === 'true' || dflt === 'false' ? dflt : '';
      const radios = [['true', 'True'], ['false', 'False'], ['', 'Unset']].map(([v, text]) => h('label', { class: 'check' },
        h('input', { type: 'radio', name, value: v, checked: v === current }), text));
      control = h('fieldset', { id, class: 'bool-input', 'aria-describedby': describedBy }, h('legend', { class: 'sr-only' }, input.id), radios);
      read = () => { const c = control.querySelector('input:checked'); return c ? c.value : ''; };
      return { control, read, wrap: control, group: true };
    }
    case 'DATETIME':
      control = h('input', { ...common, type: 'datetime-local', step: '1', value: dflt ? isoToLocalInput(dflt) : '' });
      read = () => { if (!control.value) return ''; const t = new Date(control.value); return Number.isNaN(t.getTime()) ? control.value : t.toISOString(); };
      break;
    case 'DATE':
      control = h('input', { ...common, type: 'date', value: dflt });
      read = () => control.value;
      break;
    case 'TIME':
      control = h('input', { ...common, type: 'time', step: '1', value: dflt });
      read = () => (control.value && control.value.length === 5 ? `${control.value}:00` : control.value);
      break;
    case 'DURATION':
      control = h('input', { ...common, type: 'text', value: dflt, placeholder: 'PT5M (ISO-8601 duration)', autocomplete: 'off' });
      read = () => control.value.trim();
      break;
    case 'FILE':
      control = h('input', { ...common, type: 'file' });
      read = () => (control.files && control.files[0]) || '';
      if (dflt) extra = h('span', { class: 'help' }, `Default: ${dflt}`);
      break;
    case 'SECRET': {
      control = h('input', { ...common, type: 'password', value: dflt, autocomplete: 'off' });
      const toggle = h('button', { type: 'button', 'aria-pressed': 'false', 'aria-label': `Show ${input.id}`,
        onclick: () => { const show = control.type === 'password'; control.type = show ? 'text' : 'password'; toggle.setAttribute('aria-pressed', String(show)); toggle.textContent = show ? 'Hide' : 'Show'; } }, 'Show');
      read = () => control.value;
      return { control, read, wrap: h('div', { class: 'secret-wrap' }, control, toggle) };
    }
    case 'EMAIL':
      control = h('input', { ...common, type: 'email', value: dflt, autocomplete: 'off' });
      read = () => control.value.trim();
      break;
    case 'URI':
      control = h('input', { ...common, type: 'text', inputmode: 'url', value: dflt, placeholder: 'https://…', autocomplete: 'off' });
      read = () => control.value.trim();
      break;
    case 'JSON':
    case 'YAML':
    case 'ARRAY':
      control = h('textarea', { ...common, rows: 4, value: dflt, placeholder: type === 'ARRAY' ? `JSON list of ${input.itemType || 'values'}, e.g. ["a", "b"]` : type === 'JSON' ? '{"key": "value"}' : 'key: value' });
      read = () => control.value;
      break;
    case 'ENUM':
    case 'SELECT': {
      const values = optionValues(input);
      if (!values.length || input.allowCustomValue) {
        const listId = uid('opts');
        control = h('input', { ...common, type: 'text', list: listId, value: dflt, autocomplete: 'off' });
        extra = h('datalist', { id: listId }, values.map((v) => h('option', { value: v })));
        if (!values.length && input.expression) extra = [extra, h('span', { class: 'help' }, `Values come from ${input.expression}`)];
        read = () => control.value;
      } else if (input.isRadio) {
        const name = uid('radio');
        const radios = values.map((v) => h('label', { class: 'check' }, h('input', { type: 'radio', name, value: v, checked: v === dflt }), v));
        control = h('fieldset', { id, 'aria-describedby': describedBy }, h('legend', { class: 'sr-only' }, input.id), radios);
        read = () => { const c = control.querySelector('input:checked'); return c ? c.value : ''; };
        return { control, read, wrap: control, group: true };
      } else {
        control = h('select', common,
          h('option', { value: '' }, input.required !== false && !dflt ? '— choose —' : '—'),
          values.map((v) => h('option', { value: v, selected: v === dflt }, v)));
        read = () => control.value;
      }
      break;
    }
    case 'MULTISELECT': {
      const values = optionValues(input);
      let chosen = [];
      try { const d = input.defaults; chosen = Array.isArray(d) ? d.map(String) : (typeof d === 'string' && d ? JSON.parse(d).map(String) : []); } catch { chosen = []; }
      if (!values.length) {
        control = h('textarea', { ...common, rows: 3, value: chosen.length ? JSON.stringify(chosen) : '', placeholder: '["a", "b"]' });
        read = () => control.value.trim();
        break;
      }
      const boxes = values.map((v) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: v, checked: chosen.includes(v) }), v));
      const customInput = input.allowCustomValue ? h('input', { type: 'text', 'aria-label': `${input.id}: other values, comma separated`, placeholder: 'other values, comma separated' }) : null;
      control = h('fieldset', { id, 'aria-describedby': describedBy }, h('legend', null, 'Choose any'), boxes, customInput);
      read = () => {
        const vals = [...control.querySelectorAll('input[type=checkbox]:checked')].map((c) => c.value);
        if (customInput && customInput.value.trim()) vals.push(...customInput.value.split(',').map((s) => s.trim()).filter(Boolean));
        return vals.length ? JSON.stringify(vals) : '';
      };
      return { control, read, wrap: control, group: true };
    }
    default: // STRING and unknown types
      control = h('input', { ...common, type: 'text', value: dflt, autocomplete: 'off' });
      read = () => control.value;
  }
  return { control, read, wrap: extra ? h('div', null, control, extra) : control };
}

function typedValue(input, raw) {
  const type = (input.type || 'STRING').toUpperCase();
  if (raw === '' || raw === undefined) return undefined;
  if (type === 'BOOLEAN') return raw === 'true';
  if (type === 'INT' || type === 'FLOAT') return Number(raw);
  if (type === 'MULTISELECT' || type === 'ARRAY') { try { return JSON.parse(raw); } catch { return raw; } }
  if (type === 'FILE') return raw ? (raw.name || 'file') : undefined;
  return raw;
}

/**
 * Build the form fields for `inputs`. Options:
 *   remoteValidate(formData) → Promise of Kestra's validate response ({inputs: [{input:{id}, enabled, errors}]}) or null.
 * Returns {element, fill(formData), showErrors(err) → unmatched messages, clearErrors(), fields}.
 */
export function createInputsForm(inputs, { remoteValidate } = {}) {
  const fields = [];
  const element = h('div', { class: 'inputs-form' });
  for (const input of inputs || []) {
    if (!input || !input.id) continue;
    const cid = uid(`in-${input.id.replace(/[^\w-]/g, '_')}`);
    const helpId = `${cid}-help`, errId = `${cid}-err`;
    const built = buildControl(input, cid, `${helpId} ${errId}`);
    const required = input.required !== false;
    const type = (input.type || 'STRING').toUpperCase();
    const title = input.displayName && input.displayName !== input.id ? [input.displayName, ' ', h('code', null, `(${input.id})`)] : h('code', null, input.id);
    const labelEl = built.group
      ? h('span', { class: 'label', id: `${cid}-label` }, title, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, '*') : null, ' ', h('span', { class: 'type' }, type))
      : h('label', { for: cid }, title, required ? h('span', { class: 'req', 'aria-hidden': 'true' }, '*') : null, ' ', h('span', { class: 'type' }, type));
    if (built.group) {
      built.control.setAttribute('aria-labelledby', `${cid}-label`);
      built.control.setAttribute('role', 'group');
    }
    const hints = [];
    if (input.description) hints.push(input.description);
    if (input.min !== undefined || input.max !== undefined) hints.push(`Between ${input.min ?? '−∞'} and ${input.max ?? '∞'}.`);
    if (input.after || input.before) hints.push(`${input.after ? `After ${input.after}. ` : ''}${input.before ? `Before ${input.before}.` : ''}`);
    if (input.validator) hints.push(`Must match ${input.validator}`);
    if (input.dependsOn && input.dependsOn.inputs) hints.push(`Depends on ${input.dependsOn.inputs.join(', ')}.`);
    if (type === 'DATETIME') hints.push(`Your time zone: ${Intl.DateTimeFormat().resolvedOptions().timeZone}.`);
    const err = h('div', { class: 'field-error', id: errId, role: 'alert', hidden: true });
    const wrapper = h('div', { class: 'form-field', dataset: { input: input.id } },
      built.group ? h('div', null, labelEl) : labelEl, built.wrap,
      h('span', { class: 'help', id: helpId }, hints.join(' ')), err);
    element.appendChild(wrapper);
    fields.push({ input, type, built, wrapper, err, enabled: true });
  }

  const valuesMap = () => {
    const m = {};
    for (const f of fields) if (f.enabled) m[f.input.id] = typedValue(f.input, f.built.read());
    return m;
  };

  let remoteWorks = !!remoteValidate;
  function applyDependsLocal() {
    // resolve in declaration order, repeating until stable (dependencies may come later)
    for (let pass = 0; pass < fields.length + 1; pass++) {
      let changed = false;
      const byId = Object.fromEntries(fields.map((f) => [f.input.id, f]));
      const vals = valuesMap();
      for (const f of fields) {
        const dep = f.input.dependsOn;
        if (!dep) continue;
        const deps = (dep.inputs || []).map((d) => byId[d]).filter(Boolean);
        let enabled = deps.every((d) => d.enabled && vals[d.input.id] !== undefined && vals[d.input.id] !== '');
        if (enabled && dep.condition) {
          try { enabled = evalCondition(dep.condition, vals); } catch { enabled = true; /* the server decides */ }
        }
        if (enabled !== f.enabled) { f.enabled = enabled; changed = true; }
      }
      if (!changed) break;
    }
    for (const f of fields) f.wrapper.hidden = !f.enabled;
  }
  const runRemote = debounce(async () => {
    if (!remoteWorks) return;
    const fd = new FormData();
    for (const f of fields) { const v = f.built.read(); if (v !== '' && !(v instanceof File)) fd.append(f.input.id, v); }
    let resp;
    try { resp = await remoteValidate(fd); } catch { resp = null; }
    if (!resp || !Array.isArray(resp.inputs)) { if (resp === null) remoteWorks = false; return; }
    for (const r of resp.inputs) {
      const f = fields.find((x) => r.input && x.input.id === r.input.id);
      if (f && typeof r.enabled === 'boolean') { f.enabled = r.enabled; f.wrapper.hidden = !r.enabled; }
    }
  }, 300);
  const hasDeps = fields.some((f) => f.input.dependsOn);
  if (hasDeps) {
    element.addEventListener('input', () => { applyDependsLocal(); runRemote(); });
    element.addEventListener('change', () => { applyDependsLocal(); runRemote(); });
    applyDependsLocal();
  }

  function clearErrors() {
    for (const f of fields) { f.err.hidden = true; replace(f.err); const c = f.built.control; c.removeAttribute('aria-invalid'); }
  }

  /** Put Kestra's messages next to the field they name; returns the messages that name no field. */
  function showErrors(errOrMessages) {
    clearErrors();
    const msgs = [];
    if (Array.isArray(errOrMessages)) msgs.push(...errOrMessages.map((m) => (typeof m === 'string' ? { message: m } : m)));
    else if (errOrMessages) {
      const e = errOrMessages;
      if (e.errors && e.errors.length) msgs.push(...e.errors);
      else if (e.message) msgs.push(...String(e.message).split(/\n+/).map((m) => ({ message: m })));
    }
    const unmatched = [];
    let first = null;
    for (const m of msgs) {
      const text = String(m.message || '');
      const ids = [];
      const im = /Invalid input for `([^`]+)`/i.exec(text) || /input[s]?[ .:]+`?([\w.-]+)`?/i.exec(text);
      if (im) ids.push(im[1]);
      if (m.path) ids.push(String(m.path).replace(/^(inputs?\.|.*\.inputs\.)/, ''), String(m.path).split('.').pop());
      const lead = /^(?:Invalid entity:\s*)?([\w.-]+):/.exec(text);
      if (lead) ids.push(lead[1].replace(/^inputs\./, ''));
      const f = fields.find((x) => ids.includes(x.input.id)) || fields.find((x) => new RegExp('`' + x.input.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '`').test(text));
      if (f) {
        f.err.hidden = false;
        f.err.appendChild(h('div', null, text.replace(/^Invalid entity:\s*/, '')));
        f.built.control.setAttribute('aria-invalid', 'true');
        f.wrapper.hidden = false;
        if (!first) first = f;
      } else unmatched.push(text);
    }
    if (first) {
      const c = first.built.control;
      (c.matches('fieldset') ? c.querySelector('input') || c : c).focus();
    }
    return unmatched;
  }

  /** Append every enabled input to `fd`: files as parts named after the input id, others as text parts. */
  function fill(fd) {
    for (const f of fields) {
      if (!f.enabled) continue;
      const v = f.built.read();
      if (v instanceof File) fd.append(f.input.id, v, v.name);
      else if (v !== '' && v !== undefined) fd.append(f.input.id, v);
    }
    return fd;
  }

  return { element, fill, showErrors, clearErrors, fields, get empty() { return !fields.length; } };
}

/** Key/value rows for execution labels. Returns {element, values() → ['k:v', ...]}. */
export function createLabelsEditor(initial = []) {
  const rows = h('div', { class: 'labels-rows' });
  let n = 0;
  function addRow(k = '', v = '') {
    n += 1;
    const row = h('div', { class: 'toolbar', style: { marginBottom: '6px' } },
      h('input', { type: 'text', 'aria-label': `Label ${n} key`, placeholder: 'key', value: k, autocomplete: 'off' }),
      h('input', { type: 'text', 'aria-label': `Label ${n} value`, placeholder: 'value', value: v, autocomplete: 'off' }),
      h('button', { type: 'button', 'aria-label': `Remove label ${n}`, onclick: () => row.remove() }, 'Remove'));
    rows.appendChild(row);
  }
  initial.forEach((l) => addRow(l.key, l.value));
  const element = h('fieldset', { class: 'form-field' }, h('legend', null, 'Labels (optional)'), rows,
    h('div', null, h('button', { type: 'button', onclick: () => { addRow(); rows.lastChild.querySelector('input').focus(); } }, '+ Add label')));
  return {
    element,
    values() {
      return [...rows.children].map((r) => {
        const [k, v] = r.querySelectorAll('input');
        return k.value.trim() ? `${k.value.trim()}:${v.value}` : null;
      }).filter(Boolean);
    },
  };
}
