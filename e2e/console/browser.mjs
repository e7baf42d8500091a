// Browser-side helpers of the console test: Debian's Chromium through playwright-core,
// waiting for what the user sees, the once-shown secret dialog, write controls, axe-core.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';

import { collectSecrets, recordSecret, sleep } from './server.mjs';

// Debian's Chromium (KEYPLANE_E2E_CHROMIUM only to try the test's handling of a missing one).
export const CHROMIUM = process.env.KEYPLANE_E2E_CHROMIUM || '/usr/bin/chromium';
const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Polls `fn` until it returns a truthy value (returned) or throws no more; fails after `timeout`. */
export async function eventually(fn, { timeout = 10_000, interval = 100, message = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = new Error(`${message}: got ${JSON.stringify(v)}`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}: ${last?.message}`);
    await sleep(interval);
  }
}

/**
 * Every page of the test is watched: uncaught errors and Content-Security-Policy reports are
 * collected in `problems` (the test asserts there are none), and every JSON response the
 * browser receives is scanned for secrets (KEYPLANE_E2E_SECRETS_FILE).
 */
export function watch(page, problems, label) {
  page.on('pageerror', (e) => problems.push(`${label}: uncaught ${e.message}`));
  page.on('console', (m) => {
    if (/Content.Security.Policy/i.test(m.text())) problems.push(`${label}: ${m.text()}`);
  });
  page.on('response', async (res) => {
    if (!(res.headers()['content-type'] || '').includes('json')) return;
    try {
      collectSecrets(await res.json());
    } catch {
      // Recording never changes what the test sees.
    }
  });
}

/** Waits until every list of the page has loaded (no `aria-busy="true"` left). */
export async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('[aria-busy="true"]'), null, { timeout: 10_000 });
}

export async function heading(page, name) {
  const h1 = page.getByRole('heading', { level: 1, name, exact: true });
  await h1.waitFor({ state: 'visible' });
  return h1;
}

export async function signIn(page, rootURL, key) {
  await page.goto(`${rootURL}/console`);
  const input = page.getByLabel('Admin API key');
  await input.fill(key);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await heading(page, 'Projects');
  await settled(page);
  assert.equal(await page.getByLabel('Admin API key').count(), 0, 'the sign-in input is gone');
  for (const c of await page.context().cookies()) recordSecret(c.value);
}

/**
 * The dialog that shows a new secret once: asserts the warning, reads the value(s), copies
 * with the Copy button where asked, closes it with Done and checks the value left the page.
 */
export async function readOnceShown(page, { testids = ['secret-value'], copy = false, publicIds = ['client-id-value'] } = {}) {
  const dialog = page.getByTestId('secret-dialog');
  await dialog.waitFor({ state: 'visible' });
  const warning = await dialog.getByTestId('secret-warning').innerText();
  assert.match(warning, /you will not see this again/i);
  const values = [];
  for (const id of testids) {
    const v = await dialog.getByTestId(id).inputValue();
    if (!publicIds.includes(id)) recordSecret(v);
    values.push(v);
  }
  if (copy) {
    await dialog.getByTestId(`${testids[0]}-copy`).click();
    await eventually(async () => /Copied/.test(await dialog.innerText()), { message: '"Copied." after Copy' });
    const clip = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(clip, values[0], 'the Copy button put the secret on the clipboard');
  }
  await dialog.getByRole('button', { name: 'Done' }).click();
  await dialog.waitFor({ state: 'detached' });
  const html = await page.content();
  testids.forEach((id, i) => {
    if (!publicIds.includes(id)) assert.ok(values[i] && !html.includes(values[i]), 'the secret is gone from the page once the dialog closed');
  });
  return values.length === 1 ? values[0] : values;
}

/** A dialog by test id, once open. */
export async function dialog(page, testid) {
  const d = page.getByTestId(testid);
  await d.waitFor({ state: 'visible' });
  return d;
}

const WRITE_WORDS = /^(create|add|new|rename|archive|delete|revoke|disable|enable|edit|save|copy)\b/i;

/** Visible controls that would change something: `[data-write]` ones and buttons named like it. */
export async function visibleWriteControls(page) {
  const found = [];
  for (const el of await page.locator('[data-write]').all()) if (await el.isVisible()) found.push(`[data-write] ${await el.innerText()}`);
  for (const b of await page.getByRole('button').all()) {
    if (!(await b.isVisible())) continue;
    const name = (await b.getAttribute('aria-label')) || (await b.innerText());
    if (WRITE_WORDS.test(name.trim())) found.push(`button "${name.trim()}"`);
  }
  return found;
}

/** axe-core on the page as it is; returns the serious and critical violations, described. */
export async function axeSerious(page) {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
