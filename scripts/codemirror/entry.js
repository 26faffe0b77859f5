// The CodeMirror 6 modules Falconet's flow editor uses, bundled into one ES module by
// scripts/build-codemirror (output: falconet/http/static/ui/assets/vendor/codemirror.js).
export { EditorState, StateField, StateEffect, Compartment, RangeSetBuilder } from '@codemirror/state';
export {
  EditorView, keymap, lineNumbers, highlightActiveLine, highlightActiveLineGutter, drawSelection,
  dropCursor, highlightSpecialChars, rectangularSelection, crosshairCursor, Decoration, ViewPlugin,
  gutter, GutterMarker, placeholder, MatchDecorator,
} from '@codemirror/view';
export {
  defaultKeymap, history, historyKeymap, indentWithTab, insertNewlineAndIndent,
} from '@codemirror/commands';
export {
  syntaxHighlighting, defaultHighlightStyle, HighlightStyle, indentOnInput, bracketMatching, foldGutter,
  foldKeymap, indentUnit, syntaxTree,
} from '@codemirror/language';
export { searchKeymap, highlightSelectionMatches } from '@codemirror/search';
export {
  autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap, startCompletion, currentCompletions,
  acceptCompletion, completionStatus,
} from '@codemirror/autocomplete';
export { linter, lintGutter, setDiagnostics, lintKeymap, forEachDiagnostic } from '@codemirror/lint';
export { yaml } from '@codemirror/lang-yaml';
export { tags } from '@lezer/highlight';
