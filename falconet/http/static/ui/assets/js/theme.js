// Light / dark / system colour theme: a picker in the top bar, remembered in localStorage. The page's
// <head> applies the stored choice before the first paint (index.html); `system` follows the OS.
import { h } from './util.js';

const KEY = 'falconet.theme';
const CHOICES = [['system', 'System theme'], ['light', 'Light theme'], ['dark', 'Dark theme']];

export function currentTheme() {
  try { const t = localStorage.getItem(KEY); return t === 'light' || t === 'dark' ? t : 'system'; } catch { return 'system'; }
}

export function applyTheme(theme) {
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
  try { if (theme === 'system') localStorage.removeItem(KEY); else localStorage.setItem(KEY, theme); } catch { /* storage disabled */ }
}

/** The picker (a labelled <select>) for the top bar. */
export function themePicker() {
  const select = h('select', { class: 'theme-pick', 'aria-label': 'Colour theme', onchange: () => applyTheme(select.value) },
    CHOICES.map(([value, label]) => h('option', { value, selected: value === currentTheme() }, label)));
  return select;
}
