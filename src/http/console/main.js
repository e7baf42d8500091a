// The console's entry: session check, sign-in and sign-out, the header, and the hash router
// that hands each page its part of <main>. No key ever lands in storage or in a URL: the
// sign-in input is cleared as soon as it was sent, the session lives in an HttpOnly cookie.

import { ApiError, onSessionEnded, session as sessionApi, useSession } from './api.js';
import { h, clear, errorSlot, showError, hideError, announce, fill, add } from './dom.js';
import * as projects from './projects.js';
import * as adminKeys from './admin_keys.js';
import * as orgAccounts from './org_accounts.js';
import * as audit from './audit.js';

const main = document.getElementById('main');
const header = document.getElementById('top');

let current = null; // the session object while signed in
let generation = 0; // bumps on every render: stale async renders check ctx.alive()
let expiryTimer = null;

// ------------------------------------------------------------------ routing

const ROUTES = [
  [/^\/projects$/, 'projects', (m, ctx) => projects.renderList(ctx)],
  [/^\/projects\/([^/]+)$/, 'projects', (m, ctx) => projects.renderProject(ctx, decodeURIComponent(m[1]))],
  [/^\/admin-keys$/, 'admin-keys', (m, ctx) => adminKeys.render(ctx)],
  [/^\/org-accounts$/, 'org-accounts', (m, ctx) => orgAccounts.renderList(ctx)],
  [/^\/org-accounts\/([^/]+)$/, 'org-accounts', (m, ctx) => orgAccounts.renderAccount(ctx, decodeURIComponent(m[1]))],
  [/^\/audit$/, 'audit', (m, ctx) => audit.render(ctx)],
];

function routePath() {
  const raw = location.hash.replace(/^#/, '') || '/projects';
  return raw.split('?')[0];
}

export function navigate(path) {
  if (location.hash === `#${path}`) route();
  else location.hash = path;
}

function context() {
  const mine = ++generation;
  document.querySelectorAll('dialog[open]').forEach((d) => d.close());
  return {
    session: current,
    writable: !current.read_only,
    // A container of its own: a render still running when the next one starts writes
    // into a detached node, never into the new page.
    main: clear(main).appendChild(h('div', { class: 'page' })),
    alive: () => mine === generation && current !== null,
    navigate,
    setTitle: (t) => {
      document.title = `${t} · keyplane console`;
    },
    focusHeading: () => {
      const heading = document.getElementById('page-title');
      if (heading) heading.focus({ preventScroll: false });
    },
  };
}

async function route() {
  if (!current) return;
  const path = routePath();
  for (const [re, sectionName, render] of ROUTES) {
    const m = path.match(re);
    if (!m) continue;
    markNav(sectionName);
    const ctx = context();
    try {
      await render(m, ctx);
    } catch (err) {
      if (err instanceof ApiError && err.sessionEnded) return;
      if (!ctx.alive()) return;
      const slot = errorSlot('page-error');
      add(ctx.main, slot);
      showError(slot, err);
    }
    return;
  }
  navigate('/projects');
}

function markNav(sectionName) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.section === sectionName) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

// ------------------------------------------------------------------ signed in / out

function signedIn(s) {
  current = s;
  useSession(s);
  const who = document.getElementById('who');
  fill(who, 
    h('span', { class: 'who-name' }, s.admin_key.name || s.admin_key.id),
    ' ',
    h('span', { class: 'mono who-key' }, s.admin_key.redacted_value),
    s.read_only ? h('span', { class: 'badge warn' }, 'read-only') : null,
  );
  document.getElementById('read-only-banner').hidden = !s.read_only;
  document.body.classList.toggle('read-only', Boolean(s.read_only));
  header.hidden = false;
  scheduleExpiry(s);
  route();
}

// The session ends at `expires_at` whatever happens: check then, so an open console notices.
function scheduleExpiry(s) {
  clearTimeout(expiryTimer);
  const ms = s.expires_at * 1000 - Date.now() + 1000;
  if (ms > 0 && ms < 2 ** 31) {
    expiryTimer = setTimeout(async () => {
      try {
        await sessionApi.get();
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) signedOut(endedMessage(err), 'warn');
      }
    }, ms);
  }
}

function signedOut(message, tone = 'info') {
  current = null;
  generation++;
  useSession(null);
  clearTimeout(expiryTimer);
  document.querySelectorAll('dialog').forEach((d) => d.remove());
  header.hidden = true;
  document.body.classList.remove('read-only');
  document.title = 'Sign in · keyplane console';
  renderSignIn(message, tone);
}

function renderSignIn(message, tone) {
  clear(main);
  const error = errorSlot('signin-error');
  const input = h('input', {
    id: 'admin-key',
    name: 'admin_key',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'off',
    required: true,
    'aria-describedby': 'admin-key-hint',
    'data-testid': 'signin-key',
  });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'signin-submit' }, 'Sign in');
  const form = h(
    'form',
    { class: 'signin', 'data-testid': 'signin-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'admin-key' }, 'Admin API key'), input,
      h('p', { class: 'hint', id: 'admin-key-hint' }, 'An sk-admin-… key of your organization. It is sent once to open a session and is not kept in this browser; a read-only key opens a read-only session.')),
    error,
    h('div', { class: 'form-buttons' }, submit),
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    hideError(error);
    const key = input.value.trim();
    input.value = '';
    if (!key) {
      showError(error, 'Enter an admin API key.');
      input.focus();
      return;
    }
    submit.disabled = true;
    try {
      const s = await sessionApi.signIn(key);
      signedIn(s);
      announce('Signed in.');
    } catch (err) {
      showError(error, err);
      input.focus();
    } finally {
      submit.disabled = false;
    }
  });
  add(main, 
    h('div', { class: 'signin-wrap' },
      h('h1', { id: 'page-title', tabindex: '-1' }, 'Sign in to the keyplane console'),
      message ? h('p', { class: `notice ${tone}`, role: 'status', 'data-testid': 'signin-message' }, message) : null,
      form),
  );
  input.focus();
}

async function signOut(button) {
  button.disabled = true;
  try {
    await sessionApi.signOut();
    signedOut('You have signed out.');
  } catch (err) {
    // 401: it had already ended, which is what the user wanted.
    if (err instanceof ApiError && err.status === 401) signedOut('You have signed out.');
    else alertInHeader(err);
  } finally {
    button.disabled = false;
  }
}

function alertInHeader(err) {
  let slot = document.getElementById('header-error');
  if (!slot) {
    slot = errorSlot('header-error');
    slot.id = 'header-error';
    header.append(slot);
  }
  showError(slot, err);
}

// ------------------------------------------------------------------ start

// The API's message says why (key deleted, expired, idle too long…) when it knows.
const endedMessage = (err) => `${/session/i.test(err.message) ? err.message : `Your session has ended: ${err.message}`} Sign in again to continue.`;

onSessionEnded((err) => {
  signedOut(endedMessage(err), 'warn');
});

document.getElementById('sign-out').addEventListener('click', (ev) => signOut(ev.currentTarget));
window.addEventListener('hashchange', () => route());

(async function boot() {
  try {
    signedIn(await sessionApi.get());
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      signedOut(err.code === 'no_session' ? null : endedMessage(err), 'warn');
    } else {
      signedOut(null);
      const slot = errorSlot('boot-error');
      main.prepend(slot);
      showError(slot, err);
    }
  }
})();
