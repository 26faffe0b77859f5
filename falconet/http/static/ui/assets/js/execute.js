// The Execute dialog: a form generated from the flow's inputs plus labels and revision;
// submit = multipart POST /api/v1/executions/{namespace}/{flowId}, then open the execution page.
import { h, replace, uiLinkExecution } from './util.js';
import { api, getJson, enc, ApiError } from './api.js';
import { openDialog, toast } from './components.js';
import { createInputsForm, createLabelsEditor } from './inputs-form.js';
import { navigate } from './main.js';

export async function remoteValidateInputs(namespace, flowId, fd) {
  try {
    return await api(`/executions/${enc(namespace)}/${enc(flowId)}/validate`, { method: 'POST', body: fd });
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) return null; // not offered by this server
    return undefined;
  }
}

/** The execution page URL: the API's `url` when it points at this UI, else built from the execution. */
export function executionPageUrl(execution) {
  if (execution && execution.url) {
    try {
      const u = new URL(execution.url, location.href);
      if (u.pathname.startsWith('/ui/executions/')) return u.pathname;
    } catch { /* fall through */ }
  }
  return uiLinkExecution(execution);
}

export function openExecuteDialog(flow) {
  return openDialog(`Execute ${flow.namespace}.${flow.id}`, (close) => {
    const form = createInputsForm(flow.inputs || [], { remoteValidate: (fd) => remoteValidateInputs(flow.namespace, flow.id, fd) });
    const labels = createLabelsEditor([]);
    const revSelect = h('select', { id: 'exec-revision' }, h('option', { value: '' }, `Latest${flow.revision ? ` (${flow.revision})` : ''}`));
    getJson(`/flows/${enc(flow.namespace)}/${enc(flow.id)}/revisions`).then((revs) => {
      if (!Array.isArray(revs)) return;
      revs.map((r) => r.revision).filter((r) => r !== undefined && r !== flow.revision).reverse()
        .forEach((r) => revSelect.appendChild(h('option', { value: String(r) }, `Revision ${r}`)));
    }).catch(() => { /* the latest revision stays selectable */ });
    const formError = h('div', { class: 'error-box', role: 'alert', hidden: true });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Execute');
    const el = h('form', {
      novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        formError.hidden = true;
        form.clearErrors();
        submit.disabled = true;
        submit.textContent = 'Starting…';
        const fd = form.fill(new FormData());
        try {
          const execution = await api(`/executions/${enc(flow.namespace)}/${enc(flow.id)}`, {
            method: 'POST', body: fd, query: { labels: labels.values(), revision: revSelect.value },
          });
          close();
          toast(`Execution ${execution.id} created`, 'success');
          navigate(executionPageUrl(execution));
        } catch (ex) {
          const unmatched = form.showErrors(ex);
          if (unmatched.length || !(ex.errors && ex.errors.length) && !ex.message) {
            formError.hidden = false;
            replace(formError, h('p', { class: 'error-title' }, `Could not execute${ex.status ? ` (HTTP ${ex.status})` : ''}`),
              unmatched.length ? unmatched.map((m) => h('p', null, m)) : h('p', null, ex.message));
          }
          submit.disabled = false;
          submit.textContent = 'Execute';
        }
      },
    },
    form.empty ? h('p', { class: 'muted' }, 'This flow has no inputs.') : h('h3', null, 'Inputs'),
    form.element,
    h('details', { class: 'section' }, h('summary', null, 'Labels and revision'),
      labels.element,
      h('div', { class: 'form-field' }, h('label', { for: 'exec-revision' }, 'Revision'), revSelect)),
    formError,
    h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), submit));
    return el;
  }, { wide: false });
}
