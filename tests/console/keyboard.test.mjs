// The console with the keyboard alone, in Chromium: Tab reaches each control in turn (its
// accessible name read from the focused element), Enter and Space act, the function page's
// tabs follow the arrow keys (WAI-ARIA tabs), and Tab leaves the code editor instead of being
// swallowed by it. No mouse event is sent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Portico, aws, launchBrowser, watchPage } from './helpers.mjs';

/** What a screen reader would announce for the focused element: its role and name. */
async function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return { role: 'body', name: '' };
    const labelled = el.getAttribute('aria-label')
      || (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)?.textContent)
      || el.textContent;
    const role = el.getAttribute('role') || el.tagName.toLowerCase();
    return { role, name: (labelled || '').trim().replace(/\s+/g, ' ') };
  });
}

/** Presses Tab until the focused element's name is `name` (at most `max` presses). */
async function tabTo(page, name, max = 60) {
  const seen = [];
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    if (f.name === name) return f;
    seen.push(`${f.role}:${f.name.slice(0, 30)}`);
  }
  assert.fail(`Tab never reached "${name}"; it went through ${seen.join(' | ')}`);
}

describe('the console with the keyboard alone', { timeout: 120_000 }, () => {
  const server = new Portico();
  let browser, page, errors;

  before(async () => {
    await server.start();
    browser = await launchBrowser();
    page = browser.pages()[0] ?? await browser.newPage();
    page.setDefaultTimeout(15_000);
    errors = watchPage(page);
  });

  after(async () => {
    if (errors?.pageErrors.length) console.log(`# browser page errors: ${JSON.stringify(errors.pageErrors)}`);
    await browser?.close();
    await server.stop();
  });

  it('signs in, creates a function and moves through its tabs and editor without a mouse', async () => {
    await page.goto(server.consoleUrl());
    await page.getByRole('heading', { level: 1, name: 'Sign in to Portico' }).waitFor();
    await tabTo(page, 'Access key ID');
    await page.keyboard.type(server.accessKeyId);
    await tabTo(page, 'Secret access key');
    await page.keyboard.type(server.secretAccessKey);
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Sign out', exact: true }).waitFor();

    await page.getByRole('heading', { level: 1, name: 'Functions' }).waitFor();
    await tabTo(page, 'Create function');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Create function' }).waitFor();
    await tabTo(page, 'Function name');
    await page.keyboard.type('by-keyboard');
    // A radio group is one Tab stop, on its checked radio (x86_64, AWS's default); the
    // arrow keys choose another.
    const x86 = await tabTo(page, 'x86_64');
    assert.equal(x86.role, 'input');
    await page.keyboard.press('ArrowUp');
    assert.equal(await page.getByRole('radio', { name: 'arm64' }).isChecked(), true, 'arm64 chosen by keyboard');
    const create = await tabTo(page, 'Create function');
    assert.equal(create.role, 'button');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'by-keyboard' }).waitFor();
    const made = await aws(server, ['lambda', 'get-function-configuration', '--function-name', 'by-keyboard']);
    assert.deepEqual(made.Architectures, ['arm64']);

    // The tabs: one Tab stop, the arrow keys move between them and show their panel.
    const code = await tabTo(page, 'Code');
    assert.equal(code.role, 'tab');
    await page.keyboard.press('ArrowRight');
    assert.deepEqual(await focused(page), { role: 'tab', name: 'Test' });
    assert.equal(await page.getByRole('tab', { name: 'Test' }).getAttribute('aria-selected'), 'true');
    await page.getByRole('button', { name: 'Test', exact: true }).waitFor();
    await page.keyboard.press('ArrowLeft');
    assert.deepEqual(await focused(page), { role: 'tab', name: 'Code' });

    // The editor takes the focus from Tab and gives it back: Tab moves on (here past the
    // page's last control), Shift+Tab back to the control before it.
    await page.getByRole('button', { name: 'Deploy', exact: true }).waitFor();
    await tabTo(page, 'Code editor');
    await page.keyboard.press('Tab');
    assert.notEqual((await focused(page)).name, 'Code editor', 'Tab left the editor');
    await page.keyboard.press('Shift+Tab');
    assert.equal((await focused(page)).name, 'Code editor', 'Shift+Tab came back to the editor');
    await page.keyboard.press('Shift+Tab');
    const before = await focused(page);
    assert.notEqual(before.name, 'Code editor', 'Shift+Tab left the editor');
    assert.notEqual(before.role, 'body');
  });
});
