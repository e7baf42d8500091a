// The audit log, newest first: filters by event type, project, actor and time range, paging
// to older and back to newer events, and each event's JSON on request.

import { openai, listAll } from './api.js';
import { h, pageHeading, section, table, time, errorSlot, busy, Cursors, field, selectField, nextId, fill, add } from './dom.js';
import { jsonDialog } from './dialogs.js';

// The event types the API accepts, from its own OpenAPI document; this list if that fails.
const KNOWN_TYPES = [
  'project.created', 'project.updated', 'project.archived',
  'service_account.created', 'service_account.updated', 'service_account.deleted',
  'api_key.created', 'api_key.updated', 'api_key.deleted',
  'admin_api_key.created', 'admin_api_key.deleted',
  'credential.created', 'credential.updated', 'credential.deleted',
  'rate_limit.updated', 'signing_key.rotated',
  'workload_identity_provider.created', 'workload_identity_provider.updated', 'workload_identity_provider.deleted',
  'workload_identity_provider_mapping.created', 'workload_identity_provider_mapping.updated', 'workload_identity_provider_mapping.deleted',
  'login.succeeded', 'logout.succeeded',
];
let eventTypes = null;

async function loadEventTypes() {
  if (eventTypes) return eventTypes;
  try {
    const res = await fetch('/openapi.json', { credentials: 'same-origin' });
    const doc = await res.json();
    const params = doc?.paths?.['/v1/organization/audit_logs']?.get?.parameters || [];
    const list = params.find((p) => p.name === 'event_types[]')?.schema?.items?.enum;
    eventTypes = Array.isArray(list) && list.length ? list : KNOWN_TYPES;
  } catch {
    eventTypes = KNOWN_TYPES;
  }
  return eventTypes;
}

const filters = { type: '', project: '', actor: '', from: '', to: '' };
const cursors = new Cursors();

/** A datetime-local value ("2026-11-23T10:00") in the browser's zone → Unix seconds. */
function toSeconds(local) {
  if (!local) return undefined;
  const ms = new Date(local).getTime();
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

export async function render(ctx) {
  ctx.setTitle('Audit log');
  cursors.reset();
  const listBox = h('div', { 'aria-busy': 'true' });
  const listError = errorSlot('audit-error');

  // Names for the filters' choices; the log is readable without them.
  const [types, projects, adminKeys] = await Promise.all([
    loadEventTypes(),
    listAll('/projects', { include_archived: true }).catch((e) => (e.sessionEnded ? Promise.reject(e) : [])),
    listAll('/admin_api_keys').catch((e) => (e.sessionEnded ? Promise.reject(e) : [])),
  ]);
  if (!ctx.alive()) return;
  const keyNames = new Map(adminKeys.map((k) => [k.id, k.name]));

  const type = selectField('Event type', [['', 'Any event type'], ...types.map((t) => [t, t])], { value: filters.type, 'data-testid': 'filter-type' });
  const project = selectField('Project', [['', 'Any project'], ...projects.map((p) => [p.id, p.status === 'archived' ? `${p.name} (archived)` : p.name])], { value: filters.project, 'data-testid': 'filter-project' });
  const actorList = nextId('actors');
  const actor = field('Actor (admin key ID)', { value: filters.actor, list: actorList, autocomplete: 'off', spellcheck: 'false', placeholder: 'key_…', 'data-testid': 'filter-actor' });
  const from = field('From', { type: 'datetime-local', value: filters.from, 'data-testid': 'filter-from' });
  const to = field('Until', { type: 'datetime-local', value: filters.to, 'data-testid': 'filter-to' });
  const apply = h('button', { type: 'submit', class: 'primary', 'data-testid': 'filter-apply' }, 'Apply filters');
  const reset = h('button', { type: 'button', class: 'secondary', 'data-testid': 'filter-reset' }, 'Clear filters');
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter the audit log', novalidate: true },
    type.wrap,
    project.wrap,
    actor.wrap,
    h('datalist', { id: actorList }, adminKeys.map((k) => h('option', { value: k.id }, k.name))),
    from.wrap,
    to.wrap,
    h('div', { class: 'form-buttons' }, reset, apply),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    Object.assign(filters, { type: type.input.value, project: project.input.value, actor: actor.input.value.trim(), from: from.input.value, to: to.input.value });
    cursors.reset();
    load();
  });
  reset.addEventListener('click', () => {
    Object.assign(filters, { type: '', project: '', actor: '', from: '', to: '' });
    for (const f of [type, project, actor, from, to]) f.input.value = '';
    cursors.reset();
    load();
  });

  add(ctx.main, 
    pageHeading('Audit log'),
    h('p', { class: 'lede' }, 'Every change, newest first, recorded in the same transaction as the change itself. Select an event to see its JSON.'),
    section('Filters', form),
    section('Events', listError, listBox),
  );
  ctx.focusHeading();

  function actorCell(e) {
    const a = e.actor || {};
    if (a.type === 'system') return 'system (operator command)';
    if (a.api_key) {
      const name = keyNames.get(a.api_key.id);
      return h('span', {}, name ? `${name} ` : '', h('span', { class: 'mono' }, a.api_key.id));
    }
    return a.type || '—';
  }

  async function load() {
    listBox.setAttribute('aria-busy', 'true');
    await busy(null, listError, async () => {
      const page = await openai.get('/audit_logs', {
        limit: 25,
        after: cursors.current,
        'event_types[]': filters.type ? [filters.type] : undefined,
        'project_ids[]': filters.project ? [filters.project] : undefined,
        'actor_ids[]': filters.actor ? [filters.actor] : undefined,
        'effective_at[gte]': toSeconds(filters.from),
        'effective_at[lte]': toSeconds(filters.to),
      });
      if (!ctx.alive()) return;
      fill(listBox, 
        table({
          caption: 'Audit events, newest first',
          testid: 'audit-table',
          items: page.data,
          empty: 'No events match.',
          rowAttrs: (e) => ({ 'data-testid': 'audit-row', 'data-id': e.id, 'data-type': e.type }),
          columns: [
            { label: 'Time', cell: (e) => time(e.effective_at, '—', { seconds: true }) },
            {
              label: 'Event',
              cell: (e) =>
                h('button', { type: 'button', class: 'link mono nowrap', 'data-testid': 'audit-event', onclick: () => jsonDialog({ title: `${e.type} · ${e.id}`, value: e }) }, e.type),
            },
            { label: 'Project', cell: (e) => (e.project ? e.project.name || e.project.id : '—') },
            { label: 'Actor', cell: actorCell },
            { label: 'Object', cell: (e) => h('span', { class: 'mono' }, e[e.type]?.id || '—') },
          ],
        }),
        cursors.pager(page, load, { label: 'Audit log pages', prevText: '← Newer events', nextText: 'Older events →' }),
      );
    });
    listBox.setAttribute('aria-busy', 'false');
  }
  await load();
}
