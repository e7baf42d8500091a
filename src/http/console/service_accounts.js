// A project's service accounts: a paged list, creating one (its first key shown once),
// renaming, adding a key (rotation) and deleting, after saying which keys and credentials
// stop working with it.

import { openai, keycard, listAll, seg } from './api.js';
import { h, section, table, actions, smallButton, time, errorSlot, busy, announce, Cursors, field, optionalInteger, badge, fill } from './dom.js';
import { formDialog, confirmDialog, secretDialog } from './dialogs.js';
import { newKeyDialog } from './keys.js';

const PAGE = 10;
const DAY = 86400;

export function createSection(ctx, project, { onKeysChanged }) {
  const cursors = new Cursors();
  const listBox = h('div', { 'aria-busy': 'true' });
  const listError = errorSlot('accounts-error');
  const base = `/projects/${seg(project.id)}/service_accounts`;

  let createForm = null;
  if (ctx.writable) {
    const name = field('Service account name', { required: true, maxlength: 256, autocomplete: 'off', 'data-testid': 'new-account-name' });
    const days = field('First key expires after (days)', { type: 'number', min: 1, max: 3650, inputmode: 'numeric', 'data-testid': 'new-account-expiry' }, 'Empty: the key never expires.');
    const submit = h('button', { type: 'submit', class: 'primary', 'data-write': true, 'data-testid': 'create-account' }, 'Create service account');
    const error = errorSlot('create-account-error');
    createForm = h('form', { class: 'inline-form', 'aria-label': 'Create a service account', novalidate: true }, name.wrap, days.wrap, submit, error);
    createForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let created;
      const ok = await busy(submit, error, async () => {
        const expiry = optionalInteger(days.input.value, 'The expiry', { min: 1 });
        created = await openai.post(base, { name: name.input.value, expires_in_seconds: expiry === null ? undefined : expiry * DAY });
      });
      if (!ok) return;
      name.input.value = '';
      days.input.value = '';
      announce(`Service account ${created.name} created.`);
      await reload();
      onKeysChanged();
      if (created.api_key) {
        await secretDialog({
          title: `API key of ${created.name}`,
          intro: h('p', {}, 'The service account authenticates with this key (', h('code', {}, 'Authorization: Bearer …'), ').'),
          secrets: [{ label: 'API key', value: created.api_key.value, testid: 'secret-value' }],
        });
      }
    });
  }

  const node = section('Service accounts', createForm, listError, listBox);
  node.dataset.testid = 'accounts-section';

  async function reload() {
    listBox.setAttribute('aria-busy', 'true');
    await busy(null, listError, async () => {
      const page = await openai.get(base, { limit: PAGE, after: cursors.current });
      if (!ctx.alive()) return;
      fill(listBox, 
        table({
          caption: 'Service accounts',
          testid: 'accounts-table',
          items: page.data,
          empty: 'No service accounts in this project yet.',
          rowAttrs: (a) => ({ 'data-testid': 'account-row', 'data-id': a.id, 'data-name': a.name }),
          columns: [
            { label: 'Name', cell: (a) => h('span', { class: 'strong', 'data-testid': 'account-name' }, a.name) },
            { label: 'ID', cell: (a) => h('span', { class: 'mono' }, a.id) },
            { label: 'Role', cell: (a) => badge(a.role, a.role === 'owner' ? 'info' : 'muted') },
            { label: 'Created', cell: (a) => time(a.created_at) },
            { label: 'Actions', cell: (a) => rowActions(a) },
          ],
        }),
        cursors.pager(page, reload, { label: 'Service account pages' }),
      );
    });
    listBox.setAttribute('aria-busy', 'false');
  }

  function rowActions(a) {
    if (!ctx.writable) return '';
    return actions(
      smallButton('Add key', `Add key to ${a.name}`, () => newKeyDialog(project, a, onKeysChanged), { testid: 'add-key' }),
      smallButton('Rename', `Rename ${a.name}`, () => rename(a), { testid: 'rename-account' }),
      smallButton('Delete', `Delete ${a.name}`, () => remove(a), { tone: 'danger-outline', testid: 'delete-account' }),
    );
  }

  function rename(a) {
    const name = field('Service account name', { value: a.name, required: true, maxlength: 256, 'data-testid': 'account-name-input' });
    return formDialog({
      title: `Rename ${a.name}`,
      fields: [name.wrap],
      submitLabel: 'Save name',
      testid: 'rename-account-dialog',
      onSubmit: async () => {
        const updated = await openai.post(`${base}/${seg(a.id)}`, { name: name.input.value });
        announce(`Service account renamed to ${updated.name}.`);
        await reload();
        onKeysChanged();
      },
    });
  }

  async function remove(a) {
    // What stops working: its keys (from the project's key list) and its Keycard credentials.
    let keyList = null;
    let credentials = null;
    try {
      keyList = (await listAll(`/projects/${seg(project.id)}/api_keys`)).filter((k) => k.owner?.service_account?.id === a.id);
    } catch (err) {
      if (err.sessionEnded) return;
    }
    try {
      credentials = (await keycard.get(`/service-accounts/${seg(a.id.replace(/^svc_acct_/, ''))}/credentials`, { limit: 100 })).items;
    } catch (err) {
      if (err.sessionEnded) return;
    }
    const stops = [];
    if (keyList === null) stops.push(h('li', {}, 'all of its API keys (their list could not be read)'));
    else for (const k of keyList) stops.push(h('li', {}, h('span', { class: 'mono' }, k.redacted_value), ` (${k.name})`));
    if (credentials) for (const c of credentials) stops.push(h('li', {}, `credential ${c.name} `, h('span', { class: 'mono' }, c.client_id)));
    return confirmDialog({
      title: `Delete service account ${a.name}?`,
      message: [
        stops.length
          ? [h('p', {}, 'These stop working at once, for every application that uses them:'), h('ul', { class: 'stops', 'data-testid': 'delete-stops' }, stops)]
          : h('p', { 'data-testid': 'delete-stops' }, 'It has no working API keys or credentials.'),
        h('p', {}, 'The account cannot be restored; its history stays in the audit log.'),
      ],
      confirmLabel: 'Delete service account',
      testid: 'delete-account-dialog',
      onConfirm: async () => {
        await openai.del(`${base}/${seg(a.id)}`);
        announce(`Service account ${a.name} deleted.`);
        await reload();
        onKeysChanged();
      },
    });
  }

  return { node, reload };
}
