// CodeMirror 6, loaded on first use from the committed bundle. Tab is left to the browser
// (indentWithTab is not bound), so the editor is reached and left with Tab / Shift+Tab.

let cm = null;
async function load() {
  if (!cm) cm = await import('./vendor/codemirror.js');
  return cm;
}

/** The language extension for a file name. */
function language(cm, fileName) {
  if (/\.(m|c)?js$|\.ts$/.test(fileName)) return [cm.javascript()];
  if (/\.py$/.test(fileName)) return [cm.python()];
  if (/\.json$/.test(fileName)) return [cm.json()];
  return [];
}

/**
 * Creates an editor in `parent`.
 * @returns {Promise<{getValue: () => string, setValue: (text: string, fileName?: string) => void, view: any, focus: () => void}>}
 */
export async function createEditor(parent, { doc = '', fileName = '', label = 'Code editor', onChange = null } = {}) {
  const cm = await load();
  const lang = new cm.Compartment();
  const extensions = () => [
    cm.basicSetup,
    lang.of(language(cm, fileName)),
    cm.EditorView.contentAttributes.of({ 'aria-label': label }),
    cm.EditorView.updateListener.of((u) => {
      if (u.docChanged && onChange) onChange();
    }),
  ];
  const view = new cm.EditorView({ state: cm.EditorState.create({ doc, extensions: extensions() }), parent });
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue(text, name) {
      view.dispatch({
        changes: { from: 0, to: view.state.doc.length, insert: text },
        effects: name !== undefined ? lang.reconfigure(language(cm, name)) : [],
      });
    },
    focus: () => view.focus(),
  };
}
