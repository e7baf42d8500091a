// The Keycard view: every service account of the organization (project accounts included),
// their names and descriptions, and their OAuth client credentials (the client secret shown
// once). Same accounts as the project pages: a rename here shows there at once.

import { keycard, seg } from './api.js';
import { h, pageHeading, section, table, actions, smallButton, time, errorSlot, busy, announce, pager, field, fill, add } from './dom.js';
import { formDialog, confirmDialog, secretDialog } from './dialogs.js';

const PAGE = 20;
const listState = { after: undefined, before: undefined };

function describeField(value) {
  return field('Description', { tag: 'textarea', rows: 3, maxlength: 500, value: value || '', 'data-testid': 'description-input' }, 'Up to 500 characters; empty clears it.');
}

function editAccount(account, onDone) {
  const name = field('Name', { value: account.name, required: true, maxlength: 256, 'data-testid': 'org-account-name-input' });
  const description = describeField(account.description);
  return formDialog({
    title: `Edit ${account.name}`,
    fields: [name.wrap, description.wrap],
    submitLabel: 'Save',
    testid: 'edit-org-account-dialog',
    onSubmit: async () => {
      const body = {};
      if (name.input.value !== account.name) body.name = name.input.value;
      const d = description.input.value.trim();
      if (d !== (account.description || '')) body.description = d ? description.input.value : null;
      await keycard.patch(`/service-accounts/${seg(account.id)}`, body);
      announce(`Service account ${account.name} saved.`);
      await onDone();
    },
  });
}

function deleteAccount(account, onDone) {
  return confirmDialog({
    title: `Delete service account ${account.name}?`,
    message: [
      h('p', {}, 'Its credentials are deleted, its access tokens and API keys (if it belongs to a project) stop working at once.'),
      h('p', {}, 'The account cannot be restored; its history stays in the audit log.'),
    ],
    confirmLabel: 'Delete service account',
    testid: 'delete-org-account-dialog',
    onConfirm: async () => {
      await keycard.del(`/service-accounts/${seg(account.id)}`);
      announce(`Service account ${account.name} deleted.`);
      await onDone();
    },
  });
}

// ------------------------------------------------------------------ the list

export async function renderList(ctx) {
  ctx.setTitle('Organization service accounts');
  Object.assign(listState, { after: undefined, before: undefined });
  const listBox = h('div', { 'aria-busy': 'true' });
  const listError = errorSlot('org-accounts-error');

  let createForm = null;
  if (ctx.writable) {
    const name = field('Service account name', { required: true, maxlength: 256, autocomplete: 'off', 'data-testid': 'new-org-account-name' });
    const description = field('Description', { maxlength: 500, autocomplete: 'off', 'data-testid': 'new-org-account-description' }, 'Optional.');
    const submit = h('button', { type: 'submit', class: 'primary', 'data-write': true, 'data-testid': 'create-org-account' }, 'Create service account');
    const error = errorSlot('create-org-account-error');
    createForm = h('form', { class: 'inline-form', 'aria-label': 'Create an organization service account', novalidate: true }, name.wrap, description.wrap, submit, error);
    createForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await busy(submit, error, async () => {
        const body = { name: name.input.value };
        if (description.input.value.trim()) body.description = description.input.value;
        const created = await keycard.post('/service-accounts', body);
        name.input.value = '';
        description.input.value = '';
        announce(`Service account ${created.name} created.`);
        ctx.navigate(`/org-accounts/${created.id}`);
      });
    });
  }

  add(ctx.main, 
    pageHeading('Organization service accounts'),
    h('p', { class: 'lede' }, 'Every service account of the organization, project accounts included (the Keycard API’s view). They authenticate with OAuth client credentials at /service-account-token.'),
    createForm,
    section('All service accounts', listError, listBox),
  );
  ctx.focusHeading();

  async function load() {
    listBox.setAttribute('aria-busy', 'true');
    await busy(null, listError, async () => {
      const page = await keycard.get('/service-accounts', { limit: PAGE, after: listState.after, before: listState.before });
      if (!ctx.alive()) return;
      const info = page.page_info;
      fill(listBox, 
        table({
          caption: 'Organization service accounts',
          testid: 'org-accounts-table',
          items: page.items,
          empty: 'No service accounts.',
          rowAttrs: (a) => ({ 'data-testid': 'org-account-row', 'data-id': a.id, 'data-name': a.name }),
          columns: [
            { label: 'Name', cell: (a) => h('a', { href: `#/org-accounts/${a.id}`, 'data-testid': 'org-account-link' }, a.name) },
            { label: 'ID', cell: (a) => h('span', { class: 'mono' }, a.id) },
            { label: 'Description', cell: (a) => h('span', { 'data-testid': 'org-account-description' }, a.description || '—') },
            { label: 'Created', cell: (a) => time(a.created_at) },
            { label: 'Actions', cell: (a) => (ctx.writable ? actions(
              smallButton('Edit', `Edit ${a.name}`, () => editAccount(a, load), { testid: 'edit-org-account' }),
              smallButton('Delete', `Delete ${a.name}`, () => deleteAccount(a, load), { tone: 'danger-outline', testid: 'delete-org-account' }),
            ) : '') },
          ],
        }),
        pager({
          label: 'Service account pages',
          hasMore: info.has_next_page,
          hasPrev: info.has_prev_page,
          onNext: () => {
            Object.assign(listState, { after: info.end_cursor, before: undefined });
            load();
          },
          onPrev: () => {
            Object.assign(listState, { after: undefined, before: info.start_cursor });
            load();
          },
        }),
      );
    });
    listBox.setAttribute('aria-busy', 'false');
  }
  await load();
}

// ------------------------------------------------------------------ one account

export async function renderAccount(ctx, id) {
  const account = await keycard.get(`/service-accounts/${seg(id)}`);
  if (!ctx.alive()) return;
  ctx.setTitle(account.name);
  const again = () => ctx.navigate(`/org-accounts/${account.id}`);
  const credBase = `/service-accounts/${seg(account.id)}/credentials`;
  const credBox = h('div', { 'aria-busy': 'true' });
  const credError = errorSlot('credentials-error');
  let credCursor = { after: undefined, before: undefined };

  let createForm = null;
  if (ctx.writable) {
    const name = field('Credential name', { required: true, maxlength: 256, autocomplete: 'off', 'data-testid': 'new-credential-name' });
    const description = field('Description', { maxlength: 500, autocomplete: 'off', 'data-testid': 'new-credential-description' }, 'Optional.');
    const submit = h('button', { type: 'submit', class: 'primary', 'data-write': true, 'data-testid': 'create-credential' }, 'Create credential');
    const error = errorSlot('create-credential-error');
    createForm = h('form', { class: 'inline-form', 'aria-label': 'Create a credential', novalidate: true }, name.wrap, description.wrap, submit, error);
    createForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let created;
      const ok = await busy(submit, error, async () => {
        const body = { name: name.input.value };
        if (description.input.value.trim()) body.description = description.input.value;
        created = await keycard.post(credBase, body);
      });
      if (!ok) return;
      name.input.value = '';
      description.input.value = '';
      announce(`Credential ${created.name} created.`);
      await loadCredentials();
      await secretDialog({
        title: `Credential ${created.name}`,
        intro: h('p', {}, 'Exchange them for an access token: ', h('code', {}, 'POST /service-account-token'), ' with grant_type=client_credentials and HTTP Basic authentication.'),
        secrets: [
          { label: 'Client ID', value: created.client_id, testid: 'client-id-value' },
          { label: 'Client secret', value: created.client_secret || '', testid: 'secret-value' },
        ],
      });
    });
  }

  add(ctx.main, 
    h('p', { class: 'crumbs' }, h('a', { href: '#/org-accounts' }, '← All organization service accounts')),
    pageHeading(account.name),
    h(
      'dl',
      { class: 'facts' },
      h('div', {}, h('dt', {}, 'ID'), h('dd', { class: 'mono' }, account.id)),
      h('div', {}, h('dt', {}, 'Description'), h('dd', { 'data-testid': 'account-description' }, account.description || '—')),
      h('div', {}, h('dt', {}, 'Created'), h('dd', {}, time(account.created_at))),
      h('div', {}, h('dt', {}, 'Updated'), h('dd', {}, time(account.updated_at))),
    ),
    ctx.writable
      ? h(
          'div',
          { class: 'page-actions' },
          h('button', { type: 'button', class: 'secondary', 'data-write': true, 'data-testid': 'edit-org-account', onclick: () => editAccount(account, again) }, 'Edit name and description'),
          h('button', { type: 'button', class: 'danger-outline', 'data-write': true, 'data-testid': 'delete-org-account', onclick: () => deleteAccount(account, () => ctx.navigate('/org-accounts')) }, 'Delete service account'),
        )
      : null,
    section('Credentials', createForm, credError, credBox),
  );
  ctx.focusHeading();

  async function loadCredentials() {
    credBox.setAttribute('aria-busy', 'true');
    await busy(null, credError, async () => {
      const page = await keycard.get(credBase, { limit: PAGE, ...credCursor });
      if (!ctx.alive()) return;
      const info = page.page_info;
      fill(credBox, 
        table({
          caption: 'Credentials',
          testid: 'credentials-table',
          items: page.items,
          empty: 'No credentials.',
          rowAttrs: (c) => ({ 'data-testid': 'credential-row', 'data-id': c.id, 'data-name': c.name }),
          columns: [
            { label: 'Name', cell: (c) => h('span', { class: 'strong' }, c.name) },
            { label: 'Client ID', cell: (c) => h('span', { class: 'mono' }, c.client_id) },
            { label: 'Authenticates with', cell: (c) => (c.identity_provider_id ? `a token of ${c.identity_provider_id} for ${c.subject}` : 'client secret') },
            { label: 'Description', cell: (c) => c.description || '—' },
            { label: 'Created', cell: (c) => time(c.created_at) },
            { label: 'Last used', cell: (c) => time(c.last_used_at, 'never') },
            { label: 'Actions', cell: (c) => (ctx.writable ? actions(
              smallButton('Edit', `Edit ${c.name}`, () => editCredential(c), { testid: 'edit-credential' }),
              smallButton('Delete', `Delete ${c.name}`, () => deleteCredential(c), { tone: 'danger-outline', testid: 'delete-credential' }),
            ) : '') },
          ],
        }),
        pager({
          label: 'Credential pages',
          hasMore: info.has_next_page,
          hasPrev: info.has_prev_page,
          onNext: () => {
            credCursor = { after: info.end_cursor, before: undefined };
            loadCredentials();
          },
          onPrev: () => {
            credCursor = { after: undefined, before: info.start_cursor };
            loadCredentials();
          },
        }),
      );
    });
    credBox.setAttribute('aria-busy', 'false');
  }

  function editCredential(c) {
    const name = field('Name', { value: c.name, required: true, maxlength: 256, 'data-testid': 'credential-name-input' });
    const description = describeField(c.description);
    return formDialog({
      title: `Edit credential ${c.name}`,
      fields: [name.wrap, description.wrap],
      submitLabel: 'Save',
      testid: 'edit-credential-dialog',
      onSubmit: async () => {
        const body = {};
        if (name.input.value !== c.name) body.name = name.input.value;
        const d = description.input.value.trim();
        if (d !== (c.description || '')) body.description = d ? description.input.value : null;
        await keycard.patch(`${credBase}/${seg(c.id)}`, body);
        announce(`Credential ${c.name} saved.`);
        await loadCredentials();
      },
    });
  }

  function deleteCredential(c) {
    return confirmDialog({
      title: `Delete credential ${c.name}?`,
      message: h('p', {}, 'Client ', h('span', { class: 'mono' }, c.client_id), ' can no longer get tokens, and the access tokens it already got stop working at once.'),
      confirmLabel: 'Delete credential',
      testid: 'delete-credential-dialog',
      onConfirm: async () => {
        await keycard.del(`${credBase}/${seg(c.id)}`);
        announce(`Credential ${c.name} deleted.`);
        await loadCredentials();
      },
    });
  }

  await loadCredentials();
}
