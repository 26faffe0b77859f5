// The flow editor: CodeMirror 6 (vendored bundle, see scripts/build-codemirror) with YAML highlighting,
// `{{ }}` expression marks, completion (completion.js), validation markers in the gutter and on the line,
// Ctrl+S to save.
import {
  EditorState, EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection,
  highlightSpecialChars, Decoration, ViewPlugin, MatchDecorator, defaultKeymap, history, historyKeymap,
  indentWithTab, syntaxHighlighting, HighlightStyle, indentOnInput, bracketMatching, foldGutter, foldKeymap,
  indentUnit, searchKeymap, highlightSelectionMatches, autocompletion, completionKeymap, closeBrackets,
  closeBracketsKeymap, lintGutter, setDiagnostics, lintKeymap, yaml, tags,
} from '../vendor/codemirror.js';
import { h } from './util.js';
import { flowCompletionSource } from './completion.js';

const highlight = HighlightStyle.define([
  { tag: [tags.propertyName, tags.definition(tags.propertyName)], class: 'hl-key' },
  { tag: [tags.string, tags.special(tags.string), tags.content], class: 'hl-str' },
  { tag: [tags.number, tags.integer, tags.float], class: 'hl-num' },
  { tag: [tags.bool, tags.null, tags.atom, tags.keyword], class: 'hl-bool' },
  { tag: [tags.comment, tags.lineComment], class: 'hl-com' },
  { tag: [tags.punctuation, tags.separator, tags.squareBracket, tags.brace, tags.operator], class: 'hl-punct' },
  { tag: [tags.meta, tags.processingInstruction, tags.documentMeta], class: 'hl-doc' },
  { tag: [tags.labelName, tags.typeName], class: 'hl-key' },
]);

const exprMatcher = new MatchDecorator({
  regexp: /\{\{[^\n]*?\}\}|\{%[^\n]*?%\}/g,
  decoration: Decoration.mark({ class: 'hl-expr' }),
});
const expressions = ViewPlugin.fromClass(class {
  constructor(view) { this.decorations = exprMatcher.createDeco(view); }
  update(u) { this.decorations = exprMatcher.updateDeco(u, this.decorations); }
}, { decorations: (v) => v.decorations });

/**
 * Create an editor. Options: value, label, onChange(value), onSave(), flow (true: YAML and flow completion;
 * false: plain text, as namespace files other than YAML).
 * Returns {element, view, value (get/set), caret (1-based line), setMarkers(Map line→message), goToLine(n),
 * events (an EventTarget: `input` on each edit, `caret` when the cursor moves)}.
 */
export function createCodeEditor({ value = '', label = 'Flow YAML source', onChange, onSave, flow = true, yamlMode = flow } = {}) {
  const events = new EventTarget();
  const host = h('div', { class: 'cm-host', dataset: { testid: 'yaml-editor' } });
  const element = h('div', { class: 'editor-wrap' }, host,
    h('p', { id: 'editor-help', class: 'muted', style: { fontSize: '12px', margin: '4px 0 0' } },
      flow ? 'Ctrl+Space completes; Tab indents (press Esc then Tab to leave the editor). Ctrl+S saves.'
        : 'Tab indents (press Esc then Tab to leave the editor). Ctrl+S saves.'));
  // the source is read lazily: a keystroke costs no full-document copy
  let cached = value;
  let fresh = true;

  const view = new EditorView({
    parent: host,
    state: EditorState.create({
      doc: value,
      extensions: [
        lineNumbers(), highlightActiveLineGutter(), foldGutter(), lintGutter(), highlightSpecialChars(), history(),
        drawSelection(), indentOnInput(), bracketMatching(), closeBrackets(), highlightActiveLine(),
        highlightSelectionMatches(), syntaxHighlighting(highlight), yamlMode ? yaml() : [], expressions,
        EditorState.tabSize.of(2), indentUnit.of('  '),
        flow ? autocompletion({ override: [flowCompletionSource], icons: false }) : [],
        keymap.of([
          { key: 'Mod-s', preventDefault: true, run: () => { if (onSave) onSave(); return true; } },
          ...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...foldKeymap,
          ...completionKeymap, ...lintKeymap, indentWithTab,
        ]),
        EditorView.contentAttributes.of({ 'aria-label': label, 'aria-describedby': 'editor-help', spellcheck: 'false', autocapitalize: 'off' }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged) {
            fresh = false;
            if (onChange) onChange();
            events.dispatchEvent(new Event('input'));
          }
          if (u.docChanged || u.selectionSet || u.focusChanged) events.dispatchEvent(new Event('caret'));
        }),
      ],
    }),
  });

  function source() {
    if (!fresh) { cached = view.state.doc.toString(); fresh = true; }
    return cached;
  }

  return {
    element, view, events,
    get value() { return source(); },
    set value(v) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: v } });
      cached = v; fresh = true;
    },
    /** Has the text changed from `text`? Cheap when lengths differ. */
    differsFrom(text) { return view.state.doc.length !== text.length || source() !== text; },
    get caret() { return view.state.doc.lineAt(view.state.selection.main.head).number; },
    setMarkers(markers) {
      const doc = view.state.doc;
      const diagnostics = [];
      for (const [n, message] of markers) {
        if (n < 1 || n > doc.lines) continue;
        const line = doc.line(n);
        diagnostics.push({ from: line.from, to: line.to, severity: 'error', message });
      }
      view.dispatch(setDiagnostics(view.state, diagnostics));
    },
    goToLine(n) {
      const doc = view.state.doc;
      const line = doc.line(Math.min(Math.max(1, n), doc.lines));
      view.dispatch({ selection: { anchor: line.from, head: line.to }, effects: EditorView.scrollIntoView(line.from, { y: 'center' }) });
      view.focus();
    },
    focus() { view.focus(); },
    destroy() { view.destroy(); },
  };
}
