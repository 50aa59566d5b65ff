// The one entry point of the console's CodeMirror 6 bundle (console/static/vendor/codemirror.js).
// Only what console/static/*.js imports is exported.
export { basicSetup } from "codemirror";
export { EditorView, keymap } from "@codemirror/view";
export { EditorState, Compartment } from "@codemirror/state";
export { indentWithTab } from "@codemirror/commands";
export { javascript } from "@codemirror/lang-javascript";
export { python } from "@codemirror/lang-python";
export { json } from "@codemirror/lang-json";
