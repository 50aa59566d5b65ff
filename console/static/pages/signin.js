// #/signin: exchange an access key for a console session.
import { request } from '../api.js';
import { signedIn } from '../app.js';
import { alertBox, busy, field, h } from '../ui.js';

export async function render(page) {
  const akid = h('input', { type: 'text', name: 'accessKeyId', autocomplete: 'username', required: true, spellcheck: 'false', autocapitalize: 'off' });
  const secret = h('input', { type: 'password', name: 'secretAccessKey', autocomplete: 'current-password', required: true });
  const alert = alertBox();
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
  const form = h(
    'form',
    {
      class: 'signin-card',
      novalidate: true,
      onsubmit: (e) => {
        e.preventDefault();
        busy(submit, alert, async () => {
          if (!akid.value.trim() || !secret.value) throw new Error('Enter both the access key ID and the secret access key.');
          const doc = await request('POST', '/session', { json: { accessKeyId: akid.value.trim(), secretAccessKey: secret.value } });
          signedIn(doc);
        });
      },
    },
    h('h1', {}, 'Sign in to Portico'),
    h('p', { class: 'muted' }, 'Use an access key Portico knows: the administrator key in ', h('code', {}, '<data-dir>/credentials'), ', or one made with ', h('code', {}, 'portico keys create'), '.'),
    alert,
    field('Access key ID', akid),
    field('Secret access key', secret),
    h('div', { class: 'actions' }, submit),
  );
  page.classList.add('signin-page');
  page.append(form);
  akid.focus();
}
