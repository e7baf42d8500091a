// Admin keys: list, create (read-write or read-only; the value shown once), disable/enable,
// delete. The API refuses to delete or disable the last usable write-capable key
// (`last_admin_key`); its message, which explains the guard, is shown in the dialog.

import { openai, seg } from './api.js';
import { h, pageHeading, section, table, actions, smallButton, time, badge, errorSlot, busy, announce, Cursors, field, selectField, optionalInteger, nowSeconds, fill, add } from './dom.js';
import { confirmDialog, secretDialog } from './dialogs.js';

const READ = 'api.management.read';
const WRITE = 'api.management.write';
const DAY = 86400;
const cursors = new Cursors();

function access(k) {
  if (k.scopes.includes(WRITE)) return badge('read and write', 'info');
  if (k.scopes.includes(READ)) return badge('read-only', 'warn');
  return h('span', { class: 'mono' }, k.scopes.join(' ') || 'none');
}

function state(k) {
  if (k.disabled) return badge(`disabled: ${k.disabled.reason.replace('_', ' ')}`, 'bad');
  if (k.expires_at != null && k.expires_at <= nowSeconds()) return badge('expired', 'muted');
  return badge('active', 'ok');
}

export async function render(ctx) {
  ctx.setTitle('Admin keys');
  cursors.reset();
  const listBox = h('div', { 'aria-busy': 'true' });
  const listError = errorSlot('admin-keys-error');

  let createForm = null;
  if (ctx.writable) {
    const name = field('Key name', { required: true, maxlength: 256, autocomplete: 'off', 'data-testid': 'new-admin-key-name' });
    const scope = selectField('Access', [
      ['write', 'Read and write'],
      ['read', 'Read-only'],
    ], { 'data-testid': 'new-admin-key-access' });
    const days = field('Expires after (days)', { type: 'number', min: 1, max: 365, inputmode: 'numeric', 'data-testid': 'new-admin-key-expiry' }, 'Empty: never expires (at most 365).');
    const submit = h('button', { type: 'submit', class: 'primary', 'data-write': true, 'data-testid': 'create-admin-key' }, 'Create admin key');
    const error = errorSlot('create-admin-key-error');
    createForm = h('form', { class: 'inline-form', 'aria-label': 'Create an admin key', novalidate: true }, name.wrap, scope.wrap, days.wrap, submit, error);
    createForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let created;
      const ok = await busy(submit, error, async () => {
        const expiry = optionalInteger(days.input.value, 'The expiry', { min: 1 });
        created = await openai.post('/admin_api_keys', {
          name: name.input.value,
          scopes: scope.input.value === 'read' ? [READ] : [READ, WRITE],
          expires_in_seconds: expiry === null ? undefined : expiry * DAY,
        });
      });
      if (!ok) return;
      name.input.value = '';
      days.input.value = '';
      announce(`Admin key ${created.name} created.`);
      await load();
      await secretDialog({
        title: `Admin key ${created.name}`,
        intro: h('p', {}, created.scopes.includes(WRITE) ? 'It can read and change everything in this organization.' : 'It can read everything in this organization and change nothing.'),
        secrets: [{ label: 'Admin API key', value: created.value, testid: 'secret-value' }],
      });
    });
  }

  add(ctx.main, 
    pageHeading('Admin keys'),
    h('p', { class: 'lede' }, 'Admin keys manage this organization through the API, the SDKs and this console. Read-only keys can list and look, never change.'),
    createForm,
    section('All admin keys', listError, listBox),
  );
  ctx.focusHeading();

  async function load() {
    listBox.setAttribute('aria-busy', 'true');
    await busy(null, listError, async () => {
      const page = await openai.get('/admin_api_keys', { limit: 20, after: cursors.current });
      if (!ctx.alive()) return;
      fill(listBox, 
        table({
          caption: 'Admin keys',
          testid: 'admin-keys-table',
          items: page.data,
          empty: 'No admin keys.',
          rowAttrs: (k) => ({ 'data-testid': 'admin-key-row', 'data-id': k.id, 'data-name': k.name }),
          columns: [
            { label: 'Name', cell: (k) => h('span', { class: 'strong' }, k.name || '—', k.id === ctx.session.admin_key.id ? h('span', { class: 'tag' }, ' (this session)') : null) },
            { label: 'Key', cell: (k) => h('span', { class: 'mono key' }, k.redacted_value) },
            { label: 'Access', cell: access },
            { label: 'Created', cell: (k) => time(k.created_at) },
            { label: 'Last used', cell: (k) => time(k.last_used_at, 'never') },
            { label: 'Expires', cell: (k) => time(k.expires_at, 'never') },
            { label: 'State', cell: state },
            { label: 'Actions', cell: (k) => rowActions(k) },
          ],
        }),
        cursors.pager(page, load, { label: 'Admin key pages' }),
      );
    });
    listBox.setAttribute('aria-busy', 'false');
  }

  function rowActions(k) {
    if (!ctx.writable) return '';
    return actions(
      k.disabled
        ? smallButton('Enable', `Enable ${k.name}`, () => enable(k), { testid: 'enable-admin-key' })
        : smallButton('Disable', `Disable ${k.name}`, () => disable(k), { testid: 'disable-admin-key' }),
      smallButton('Delete', `Delete ${k.name}`, () => remove(k), { tone: 'danger-outline', testid: 'delete-admin-key' }),
    );
  }

  const own = (k) => (k.id === ctx.session.admin_key.id ? h('p', { class: 'warning' }, 'This is the key of your own session: the session ends with it.') : null);

  function remove(k) {
    return confirmDialog({
      title: `Delete admin key ${k.name}?`,
      message: [h('p', {}, 'Key ', h('span', { class: 'mono' }, k.redacted_value), ' stops working at once, and so do console sessions opened with it.'), own(k)],
      confirmLabel: 'Delete admin key',
      testid: 'delete-admin-key-dialog',
      onConfirm: async () => {
        // The last usable write-capable key is refused (400 last_admin_key); the API's
        // message, which says why, stays in this dialog.
        await openai.del(`/admin_api_keys/${seg(k.id)}`);
        announce(`Admin key ${k.name} deleted.`);
        await load();
      },
    });
  }

  function disable(k) {
    const reason = selectField('Reason', [
      ['user_initiated', 'User initiated'],
      ['exposed', 'Exposed'],
      ['compromised', 'Compromised'],
    ], { 'data-testid': 'disable-reason' });
    return confirmDialog({
      title: `Disable admin key ${k.name}?`,
      message: [h('p', {}, 'It is refused until enabled again, and console sessions opened with it end.'), own(k), reason.wrap],
      confirmLabel: 'Disable admin key',
      testid: 'disable-admin-key-dialog',
      onConfirm: async () => {
        await openai.post(`/admin_api_keys/${seg(k.id)}/disable`, { reason: reason.input.value });
        announce(`Admin key ${k.name} disabled.`);
        await load();
      },
    });
  }

  function enable(k) {
    return confirmDialog({
      title: `Enable admin key ${k.name}?`,
      message: h('p', {}, 'It authenticates again.'),
      confirmLabel: 'Enable admin key',
      tone: 'primary',
      testid: 'enable-admin-key-dialog',
      onConfirm: async () => {
        await openai.post(`/admin_api_keys/${seg(k.id)}/enable`);
        announce(`Admin key ${k.name} enabled.`);
        await load();
      },
    });
  }

  await load();
}
