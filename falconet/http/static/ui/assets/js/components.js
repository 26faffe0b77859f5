// Reusable widgets: toasts, modal dialogs, tabs, paging.
import { h, replace, uid } from './util.js';

/** Show a toast for `ms` (0: until dismissed); returns its element (remove() takes it away early). */
export function toast(message, kind = 'info', ms = 5000) {
  const region = document.getElementById('toasts');
  if (!region) return;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', null, message),
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'));
  region.appendChild(el);
  if (ms) setTimeout(() => el.remove(), ms);
  return el;
}

/**
 * Open a modal <dialog>. `build(close)` returns the body; the dialog closes on Escape or close().
 * Returns {dialog, close}. Focus returns to the opener when closed.
 */
export function openDialog(title, build, { wide = false } = {}) {
  const opener = document.activeElement;
  const titleId = uid('dlg-title');
  const dialog = h('dialog', { class: `dialog${wide ? ' wide' : ''}`, 'aria-labelledby': titleId });
  const close = () => { if (dialog.open) dialog.close(); };
  dialog.addEventListener('close', () => {
    dialog.remove();
    if (opener && opener.focus && document.contains(opener)) opener.focus();
  });
  dialog.appendChild(h('header', { class: 'dialog-head' },
    h('h2', { id: titleId }, title),
    h('button', { type: 'button', class: 'icon-btn', 'aria-label': 'Close', onclick: close }, '×')));
  dialog.appendChild(h('div', { class: 'dialog-body' }, build(close)));
  document.body.appendChild(dialog);
  dialog.showModal();
  const first = dialog.querySelector('input:not([type=hidden]):not([disabled]), select, textarea, button.primary');
  if (first) first.focus();
  return { dialog, close };
}

export function confirmDialog(title, text, confirmLabel, onConfirm, { danger = false } = {}) {
  return openDialog(title, (close) => {
    const err = h('div', { class: 'form-error', role: 'alert', hidden: true });
    const btn = h('button', { type: 'submit', class: danger ? 'danger primary' : 'primary' }, confirmLabel);
    return h('form', {
      onsubmit: async (e) => {
        e.preventDefault();
        btn.disabled = true;
        try { await onConfirm(); close(); } catch (ex) { err.hidden = false; replace(err, ex.message || String(ex)); btn.disabled = false; }
      },
    }, h('p', null, text), err,
    h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: close }, 'Cancel'), btn));
  });
}

/**
 * Tabs with roving focus (arrow keys). `tabs` = [{id, label}]; `onSelect(id)` draws the panel.
 * Returns {element, panel, select(id)}.
 */
export function tabs(items, current, onSelect, { label = 'Sections' } = {}) {
  const panel = h('div', { class: 'tab-panel', role: 'tabpanel', tabindex: '0' });
  const buttons = items.map((t) => h('button', {
    type: 'button', role: 'tab', id: `tab-${t.id}`, class: 'tab', 'aria-controls': 'tabpanel', dataset: { tab: t.id },
    onclick: () => select(t.id, true),
    onkeydown: (e) => {
      const i = items.findIndex((x) => x.id === t.id);
      let j = null;
      if (e.key === 'ArrowRight') j = (i + 1) % items.length;
      if (e.key === 'ArrowLeft') j = (i - 1 + items.length) % items.length;
      if (e.key === 'Home') j = 0;
      if (e.key === 'End') j = items.length - 1;
      if (j !== null) { e.preventDefault(); select(items[j].id, true); buttons[j].focus(); }
    },
  }, t.label));
  panel.id = 'tabpanel';
  const list = h('div', { class: 'tabs', role: 'tablist', 'aria-label': label }, buttons);
  let active = null;
  function select(id, user) {
    if (!items.some((t) => t.id === id)) id = items[0].id;
    active = id;
    buttons.forEach((b) => {
      const on = b.dataset.tab === id;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
      if (on) panel.setAttribute('aria-labelledby', b.id);
    });
    onSelect(id, user);
  }
  return { element: h('div', { class: 'tabs-wrap' }, list, panel), panel, select, get active() { return active; } };
}

export function pager(page, size, total, go) {
  const pages = Math.max(1, Math.ceil((total || 0) / size));
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    h('button', { type: 'button', disabled: page <= 1, onclick: () => go(page - 1) }, '← Previous'),
    h('span', { 'aria-live': 'polite' }, `Page ${page} of ${pages} · ${total ?? 0} total`),
    h('button', { type: 'button', disabled: page >= pages, onclick: () => go(page + 1) }, 'Next →'));
}
