// Topology of a flow's tasks from its JSON: sequences top-down, flowables as dashed groups with
// their branches (then/else, cases, parallel children, errors, finally).
import { h } from './util.js';

const PARALLEL = /(\.Parallel|\.EachParallel|\.Dag)$/;

function shortType(type) { return (type || '').split('.').pop(); }

function branchesOf(task) {
  const out = [];
  const type = task.type || '';
  if (Array.isArray(task.tasks)) {
    const items = task.tasks.map((t) => (t && t.task ? { ...t.task, _dependsOn: t.dependsOn } : t));
    out.push({ label: /\.Dag$/.test(type) ? 'dag' : (PARALLEL.test(type) || (/ForEach$/.test(type) && task.concurrencyLimit !== 1 && task.concurrencyLimit !== undefined) ? 'parallel' : 'tasks'), tasks: items, parallel: PARALLEL.test(type) });
  }
  if (Array.isArray(task.then)) out.push({ label: 'then', tasks: task.then });
  if (Array.isArray(task.else)) out.push({ label: 'else', tasks: task.else });
  if (task.cases && typeof task.cases === 'object') for (const [k, v] of Object.entries(task.cases)) if (Array.isArray(v)) out.push({ label: `case ${k}`, tasks: v });
  if (Array.isArray(task.defaults)) out.push({ label: 'defaults', tasks: task.defaults });
  if (Array.isArray(task.errors)) out.push({ label: 'errors', tasks: task.errors, errors: true });
  if (Array.isArray(task.finally)) out.push({ label: 'finally', tasks: task.finally });
  return out;
}

function taskNode(task) {
  const branches = branchesOf(task);
  const head = [h('div', { class: 'tid' }, task.id),
    h('div', { class: 'ttype', title: task.type }, shortType(task.type)),
    task._dependsOn && task._dependsOn.length ? h('div', { class: 'ttype' }, `after ${task._dependsOn.join(', ')}`) : null,
    task.disabled ? h('div', { class: 'ttype' }, 'disabled') : null];
  if (!branches.length) return h('div', { class: 'topo-task', role: 'listitem', 'aria-label': `Task ${task.id} (${shortType(task.type)})`, dataset: { task: task.id } }, head);
  const lanes = branches.map((b) => h('div', { class: `topo-branch${b.errors ? ' topo-errors' : ''}` },
    h('div', { class: 'blabel' }, b.label), sequence(b.tasks, b.parallel)));
  return h('div', { class: 'topo-task topo-group', role: 'group', 'aria-label': `Group ${task.id} (${shortType(task.type)})`, dataset: { task: task.id } },
    head, h('div', { class: 'topo-branches' }, lanes));
}

function sequence(tasks, parallel = false) {
  const nodes = (tasks || []).filter(Boolean).map(taskNode);
  if (parallel) return h('div', { class: 'topo-par', role: 'list' }, nodes);
  const out = [];
  nodes.forEach((n, i) => { if (i) out.push(h('div', { class: 'arrow', 'aria-hidden': 'true' }, '↓')); out.push(n); });
  return h('div', { class: 'topo-seq', role: 'list' }, out);
}

export function renderTopology(flow) {
  if (!flow || !Array.isArray(flow.tasks) || !flow.tasks.length) return h('p', { class: 'muted' }, 'No tasks.');
  const parts = [sequence(flow.tasks)];
  for (const [key, label] of [['errors', 'errors (on failure)'], ['finally', 'finally'], ['afterExecution', 'after execution']]) {
    if (Array.isArray(flow[key]) && flow[key].length) {
      parts.push(h('div', { class: `topo-branch${key === 'errors' ? ' topo-errors' : ''}`, style: { marginTop: '14px' } }, h('div', { class: 'blabel' }, label), sequence(flow[key])));
    }
  }
  if (Array.isArray(flow.triggers) && flow.triggers.length) {
    parts.unshift(h('div', { class: 'topo-branch', style: { marginBottom: '14px' } }, h('div', { class: 'blabel' }, 'triggers'),
      h('div', { class: 'topo-par' }, flow.triggers.map((t) => h('div', { class: 'topo-task' }, h('div', { class: 'tid' }, t.id), h('div', { class: 'ttype' }, shortType(t.type)))))));
  }
  return h('div', { class: 'topo', role: 'region', 'aria-label': 'Flow topology' }, parts);
}

const RUNNING = new Set(['CREATED', 'RUNNING', 'RETRYING', 'KILLING', 'RESTARTED', 'QUEUED', 'PAUSED']);

/** One state for the task runs of a task (a ForEach child runs once per value): a live one first, then
 * the worst ended one; `null` when it has not run. */
export function taskState(runs) {
  if (!runs || !runs.length) return null;
  const states = runs.map((r) => r.state.current);
  for (const s of ['RUNNING', 'PAUSED', 'KILLING', 'RETRYING', 'RESTARTED', 'QUEUED', 'CREATED']) if (states.includes(s)) return s;
  for (const s of ['FAILED', 'KILLED', 'WARNING', 'CANCELLED', 'RETRIED', 'SKIPPED', 'SUCCESS']) if (states.includes(s)) return s;
  return states[states.length - 1];
}

/** Show each task's live state on a topology drawn by renderTopology (task runs of an execution). */
export function paintTopology(topo, taskRunList) {
  const byTask = new Map();
  for (const tr of taskRunList || []) { if (!byTask.has(tr.taskId)) byTask.set(tr.taskId, []); byTask.get(tr.taskId).push(tr); }
  for (const node of topo.querySelectorAll('[data-task]')) {
    const runs = byTask.get(node.dataset.task) || [];
    const state = taskState(runs);
    const key = `${state}:${runs.length}`;
    if (node.dataset.painted === key) continue;
    node.dataset.painted = key;
    let tag = node.querySelector(':scope > .tstate');
    if (!tag) { tag = h('div', { class: 'tstate' }); node.insertBefore(tag, node.children[2] || null); }
    if (state) node.dataset.state = state; else delete node.dataset.state;
    node.classList.toggle('live-task', RUNNING.has(state));
    tag.className = `tstate${state ? ` badge state-${state.toLowerCase()}` : ' muted'}`;
    tag.textContent = state ? `${state}${runs.length > 1 ? ` ×${runs.length}` : ''}` : 'not run';
  }
}

/** Find a task definition by id anywhere in a flow (for Pause onResume, task types). */
export function findTask(flow, taskId) {
  let found = null;
  const visit = (list) => {
    for (const t0 of list || []) {
      const t = t0 && t0.task ? t0.task : t0;
      if (!t || found) continue;
      if (t.id === taskId) { found = t; return; }
      for (const b of branchesOf(t)) visit(b.tasks);
    }
  };
  if (flow) { visit(flow.tasks); visit(flow.errors); visit(flow.finally); visit(flow.afterExecution); }
  return found;
}
