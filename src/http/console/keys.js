// A project's API keys: what each is (redacted value, owner, dates, scopes, admission
// settings) and its state, and the changes the API offers: a new key for an account
// (rotation), revoking now or after a grace period, expiry, scopes, allowlist and limits,
// disabling with a reason and enabling. Revoked keys leave the API's key list; the audit log
// still knows them, so they are listed below from there.

import { openai, seg } from './api.js';
import { h, section, table, actions, smallButton, time, badge, errorSlot, busy, announce, Cursors, field, selectField, words, optionalInteger, nowSeconds, fill } from './dom.js';
import { formDialog, confirmDialog, secretDialog } from './dialogs.js';

const PAGE = 20;
const DAY = 86400;
const REASONS = [
  ['user_initiated', 'User initiated'],
  ['exposed', 'Exposed'],
  ['compromised', 'Compromised'],
];
const LIMITS = [
  ['max_requests_per_1_minute', 'Max requests per minute'],
  ['max_requests_per_1_day', 'Max requests per day'],
  ['max_tokens_per_1_minute', 'Max tokens per minute'],
];

/** active / expired / disabled (with its reason), as a badge. */
export function keyState(k, project) {
  if (project && project.status === 'archived') return badge('stopped: project archived', 'muted');
  if (k.disabled) return badge(`disabled: ${k.disabled.reason.replace('_', ' ')}`, 'bad');
  if (k.expires_at !== null && k.expires_at !== undefined && k.expires_at <= nowSeconds()) return badge('expired', 'muted');
  return badge('active', 'ok');
}

function admissionSummary(k) {
  const parts = [];
  if (k.allowed_ips && k.allowed_ips.length) parts.push(`from ${k.allowed_ips.join(', ')}`);
  if (k.max_requests_per_1_minute != null) parts.push(`${k.max_requests_per_1_minute} req/min`);
  if (k.max_requests_per_1_day != null) parts.push(`${k.max_requests_per_1_day} req/day`);
  if (k.max_tokens_per_1_minute != null) parts.push(`${k.max_tokens_per_1_minute} tokens/min`);
  return parts.length ? parts.join('; ') : 'none';
}

function limitFields(k = {}) {
  return LIMITS.map(([name, label]) => [name, field(label, { type: 'number', min: 0, inputmode: 'numeric', value: k[name] ?? '', 'data-testid': `limit-${name}` }, 'Empty: no limit.')]);
}

function allowlistField(k = {}) {
  return field(
    'Allowed client addresses',
    { tag: 'textarea', rows: 2, value: (k.allowed_ips || []).join('\n'), 'data-testid': 'key-allowed-ips' },
    'IPv4/IPv6 addresses or CIDRs, one per line or comma-separated. Empty: any address.',
  );
}

/** "Add key" on a service account: the new key's value is shown once. */
export function newKeyDialog(project, account, onDone) {
  const name = field('Key name', { maxlength: 256, autocomplete: 'off', 'data-testid': 'key-name' }, 'Optional, e.g. rotation-2026-11.');
  const scopes = field('Scopes', { autocomplete: 'off', 'data-testid': 'key-scopes' }, 'Optional; space- or comma-separated. Gateways receive them in X-Keyplane-Scopes.');
  const days = field('Expires after (days)', { type: 'number', min: 1, max: 3650, inputmode: 'numeric', 'data-testid': 'key-expiry-days' }, 'Empty: never expires.');
  const ips = allowlistField();
  const limits = limitFields();
  let issued = null;
  return formDialog({
    title: `Add a key to ${account.name}`,
    intro: h('p', {}, 'The account keeps its other keys: revoke the old one once its users have switched (rotation).'),
    fields: [name.wrap, scopes.wrap, days.wrap, h('details', { class: 'more' }, h('summary', {}, 'Allowlist and limits'), ips.wrap, limits.map(([, f]) => f.wrap))],
    submitLabel: 'Create key',
    testid: 'add-key-dialog',
    onSubmit: async () => {
      const body = {};
      if (name.input.value.trim()) body.name = name.input.value;
      const scopeList = words(scopes.input.value);
      if (scopeList.length) body.scopes = scopeList;
      const expiry = optionalInteger(days.input.value, 'The expiry', { min: 1 });
      if (expiry !== null) body.expires_in_seconds = expiry * DAY;
      const ipList = words(ips.input.value);
      if (ipList.length) body.allowed_ips = ipList;
      for (const [key, f] of limits) {
        const v = optionalInteger(f.input.value, f.wrap.querySelector('label').textContent);
        if (v !== null) body[key] = v;
      }
      issued = await openai.post(`/projects/${seg(project.id)}/service_accounts/${seg(account.id)}/api_keys`, body);
    },
  }).then(async (ok) => {
    if (!ok || !issued) return;
    announce(`Key ${issued.name} created for ${account.name}.`);
    await onDone();
    await secretDialog({
      title: `New key of ${account.name}`,
      intro: h('p', {}, `Key ${issued.name}`, issued.expires_at ? [', expires ', time(issued.expires_at)] : ', never expires', '.'),
      secrets: [{ label: 'API key', value: issued.value, testid: 'secret-value' }],
    });
  });
}

export function createSection(ctx, project) {
  const cursors = new Cursors();
  const listBox = h('div', { 'aria-busy': 'true' });
  const listError = errorSlot('keys-error');
  const revokedBox = h('div', { 'data-testid': 'revoked-keys' });
  const revokedError = errorSlot('revoked-error');
  const base = `/projects/${seg(project.id)}/api_keys`;
  const writable = ctx.writable && project.status === 'active';

  const revokedId = `revoked-${project.id}`;
  const node = section(
    'API keys',
    listError,
    listBox,
    h('h3', { id: revokedId }, 'Revoked keys'),
    h('p', { class: 'hint' }, 'From the audit log (the latest 100 key events of this project). A key revoked with a grace period works until the time shown.'),
    revokedError,
    revokedBox,
  );
  node.dataset.testid = 'keys-section';

  async function reload() {
    listBox.setAttribute('aria-busy', 'true');
    let shown = [];
    await busy(null, listError, async () => {
      const page = await openai.get(base, { limit: PAGE, after: cursors.current });
      if (!ctx.alive()) return;
      shown = page.data;
      fill(listBox, 
        table({
          caption: 'API keys',
          testid: 'keys-table',
          items: page.data,
          empty: 'No working keys in this project.',
          rowAttrs: (k) => ({ 'data-testid': 'key-row', 'data-id': k.id, 'data-name': k.name, 'data-owner': k.owner.service_account.name }),
          columns: [
            { label: 'Key', cell: (k) => h('div', {}, h('div', { class: 'strong' }, k.name), h('div', { class: 'mono key', 'data-testid': 'key-redacted' }, k.redacted_value)) },
            { label: 'Owner', cell: (k) => k.owner.service_account.name },
            {
              label: 'Dates',
              cell: (k) =>
                h('dl', { class: 'mini' },
                  h('div', {}, h('dt', {}, 'Created'), h('dd', {}, time(k.created_at))),
                  h('div', {}, h('dt', {}, 'Last used'), h('dd', {}, time(k.last_used_at, 'never'))),
                  h('div', {}, h('dt', {}, 'Expires'), h('dd', { 'data-testid': 'key-expires' }, time(k.expires_at, 'never')))),
            },
            {
              label: 'Scopes and limits',
              cell: (k) =>
                h('dl', { class: 'mini' },
                  h('div', {}, h('dt', {}, 'Scopes'), h('dd', { 'data-testid': 'key-scopes' }, k.scopes.length ? h('span', { class: 'mono' }, k.scopes.join(' ')) : 'none')),
                  h('div', {}, h('dt', {}, 'Limits'), h('dd', { 'data-testid': 'key-admission' }, admissionSummary(k)))),
            },
            { label: 'State', cell: (k) => keyState(k, project) },
            { label: 'Actions', cell: (k) => rowActions(k) },
          ],
        }),
        cursors.pager(page, reload, { label: 'Key pages' }),
      );
    });
    listBox.setAttribute('aria-busy', 'false');
    await loadRevoked(new Set(shown.map((k) => k.id)));
  }

  async function loadRevoked(listed) {
    await busy(null, revokedError, async () => {
      const events = await openai.get('/audit_logs', {
        limit: 100,
        'project_ids[]': [project.id],
        'event_types[]': ['api_key.created', 'api_key.deleted', 'service_account.deleted'],
      });
      if (!ctx.alive()) return;
      const created = new Map();
      const ended = new Map();
      for (const e of events.data) {
        if (e.type === 'api_key.created') created.set(e['api_key.created'].id, e['api_key.created'].data || {});
        if (e.type === 'api_key.deleted') ended.set(e['api_key.deleted'].id, e['api_key.deleted'].effective_at ?? e.effective_at);
        if (e.type === 'service_account.deleted') {
          for (const id of e['service_account.deleted'].revoked_api_key_ids || []) if (!ended.has(id)) ended.set(id, e.effective_at);
        }
      }
      const now = nowSeconds();
      const rows = [...ended.entries()].filter(([id]) => !listed.has(id)).map(([id, at]) => ({ id, at, ...(created.get(id) || {}) }));
      fill(revokedBox, 
        table({
          caption: 'Revoked keys',
          testid: 'revoked-table',
          items: rows,
          empty: 'No revoked keys in the recent audit log.',
          rowAttrs: (r) => ({ 'data-testid': 'revoked-row', 'data-id': r.id }),
          columns: [
            { label: 'Name', cell: (r) => r.name || '—' },
            { label: 'Key', cell: (r) => h('span', { class: 'mono key' }, r.redacted_value || r.id) },
            { label: 'Stops working', cell: (r) => time(r.at) },
            { label: 'State', cell: (r) => (r.at > now ? badge('revoking (grace period)', 'warn') : badge('revoked', 'bad')) },
          ],
        }),
      );
    });
  }

  function rowActions(k) {
    if (!writable) return '';
    return actions(
      smallButton('Edit', `Edit ${k.name}`, () => edit(k), { testid: 'edit-key' }),
      k.disabled
        ? smallButton('Enable', `Enable ${k.name}`, () => enable(k), { testid: 'enable-key' })
        : smallButton('Disable', `Disable ${k.name}`, () => disable(k), { testid: 'disable-key' }),
      smallButton('Revoke', `Revoke ${k.name}`, () => revoke(k), { tone: 'danger-outline', testid: 'revoke-key' }),
    );
  }

  function revoke(k) {
    const when = selectField('When', [
      ['now', 'Now'],
      ['grace', 'After a grace period'],
    ], { 'data-testid': 'revoke-when' });
    const grace = field('Grace period (minutes)', { type: 'number', min: 1, max: 43200, inputmode: 'numeric', 'data-testid': 'revoke-grace' }, 'The key keeps working this long (at most 30 days, never past its own expiry).');
    return confirmDialog({
      title: `Revoke key ${k.name}?`,
      message: [
        h('p', {}, 'Key ', h('span', { class: 'mono' }, k.redacted_value), ` of ${k.owner.service_account.name} stops working for good. Its account and other keys are unaffected.`),
        when.wrap,
        grace.wrap,
      ],
      confirmLabel: 'Revoke key',
      testid: 'revoke-key-dialog',
      onConfirm: async () => {
        let query;
        if (when.input.value === 'grace') {
          const minutes = optionalInteger(grace.input.value, 'The grace period', { min: 1 });
          if (minutes === null) throw new Error('Enter the grace period in minutes, or revoke now.');
          query = { grace_period_seconds: minutes * 60 };
        }
        await openai.del(`${base}/${seg(k.id)}`, query);
        announce(`Key ${k.name} revoked.`);
        await reload();
      },
    });
  }

  function disable(k) {
    const reason = selectField('Reason', REASONS, { 'data-testid': 'disable-reason' });
    return confirmDialog({
      title: `Disable key ${k.name}?`,
      message: [h('p', {}, 'Requests with it are refused (key_disabled) until it is enabled again; nothing else about it changes.'), reason.wrap],
      confirmLabel: 'Disable key',
      testid: 'disable-key-dialog',
      onConfirm: async () => {
        await openai.post(`${base}/${seg(k.id)}/disable`, { reason: reason.input.value });
        announce(`Key ${k.name} disabled.`);
        await reload();
      },
    });
  }

  function enable(k) {
    return confirmDialog({
      title: `Enable key ${k.name}?`,
      message: h('p', {}, `It was disabled (${k.disabled.reason.replace('_', ' ')}) `, time(k.disabled.disabled_at), '. Once enabled it authenticates again.'),
      confirmLabel: 'Enable key',
      tone: 'primary',
      testid: 'enable-key-dialog',
      onConfirm: async () => {
        await openai.post(`${base}/${seg(k.id)}/enable`);
        announce(`Key ${k.name} enabled.`);
        await reload();
      },
    });
  }

  function edit(k) {
    const expiry = selectField('Expiry', [
      ['keep', k.expires_at ? 'Keep the current expiry' : 'Keep: never expires'],
      ['never', 'Never expires'],
      ['days', 'Expires after a number of days from now'],
    ], { 'data-testid': 'edit-expiry' });
    const days = field('Days from now', { type: 'number', min: 1, max: 3650, inputmode: 'numeric', 'data-testid': 'edit-expiry-days' });
    const scopes = field('Scopes', { value: k.scopes.join(' '), autocomplete: 'off', 'data-testid': 'edit-scopes' }, 'Space- or comma-separated; empty: none.');
    const ips = allowlistField(k);
    const limits = limitFields(k);
    return formDialog({
      title: `Edit key ${k.name}`,
      intro: h('p', {}, 'Key ', h('span', { class: 'mono' }, k.redacted_value), ', expires ', time(k.expires_at, 'never'), '.'),
      fields: [expiry.wrap, days.wrap, scopes.wrap, ips.wrap, ...limits.map(([, f]) => f.wrap)],
      submitLabel: 'Save changes',
      testid: 'edit-key-dialog',
      onSubmit: async () => {
        const body = {};
        if (expiry.input.value === 'never') body.expires_in_seconds = null;
        if (expiry.input.value === 'days') {
          const d = optionalInteger(days.input.value, 'Days from now', { min: 1 });
          if (d === null) throw new Error('Enter the number of days from now.');
          body.expires_in_seconds = d * DAY;
        }
        const newScopes = words(scopes.input.value);
        if (newScopes.join(' ') !== k.scopes.join(' ')) body.scopes = newScopes;
        const newIps = words(ips.input.value);
        if (newIps.join(' ') !== (k.allowed_ips || []).join(' ')) body.allowed_ips = newIps.length ? newIps : null;
        for (const [key, f] of limits) {
          const v = optionalInteger(f.input.value, f.wrap.querySelector('label').textContent);
          if (v !== (k[key] ?? null)) body[key] = v;
        }
        await openai.post(`${base}/${seg(k.id)}`, body);
        announce(`Key ${k.name} saved.`);
        await reload();
      },
    });
  }

  return { node, reload };
}
