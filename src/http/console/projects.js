// Projects: the list (with or without archived ones), creating, renaming, the allowlist and
// archiving; and a project's own page, which holds its service accounts and keys.

import { openai, seg } from './api.js';
import { h, pageHeading, section, table, actions, smallButton, badge, time, errorSlot, busy, announce, Cursors, field, words, fill, add } from './dom.js';
import { formDialog, confirmDialog } from './dialogs.js';
import * as serviceAccounts from './service_accounts.js';
import * as keys from './keys.js';
import * as rateLimits from './rate_limits.js';

const listState = { includeArchived: false, cursors: new Cursors() };

function statusBadge(p) {
  return p.status === 'archived' ? badge('archived', 'muted') : badge('active', 'ok');
}

const allowlistText = (ips) => (ips && ips.length ? ips.join(', ') : 'any address');

// ------------------------------------------------------------------ shared dialogs

export function renameProject(project, onDone) {
  const name = field('Project name', { value: project.name, required: true, maxlength: 256, 'data-testid': 'project-name-input' });
  return formDialog({
    title: `Rename project ${project.name}`,
    fields: [name.wrap],
    submitLabel: 'Save name',
    testid: 'rename-project-dialog',
    onSubmit: async () => {
      const updated = await openai.post(`/projects/${seg(project.id)}`, { name: name.input.value });
      announce(`Project renamed to ${updated.name}.`);
      await onDone(updated);
    },
  });
}

export function archiveProject(project, onDone) {
  return confirmDialog({
    title: `Archive project ${project.name}?`,
    message: [
      h('p', {}, 'Every API key of its service accounts, and every access token they hold, stops working at once. Its accounts can no longer be changed and no new keys can be made in it.'),
      h('p', {}, 'An archived project cannot be made active again; it stays listed among archived projects, with its history in the audit log.'),
    ],
    confirmLabel: 'Archive project',
    testid: 'archive-project-dialog',
    onConfirm: async () => {
      const archived = await openai.post(`/projects/${seg(project.id)}/archive`);
      announce(`Project ${archived.name} archived.`);
      await onDone(archived);
    },
  });
}

function editProjectAllowlist(project, onDone) {
  const ips = field(
    'Allowed client addresses',
    { tag: 'textarea', rows: 4, value: (project.allowed_ips || []).join('\n'), 'data-testid': 'allowed-ips-input' },
    'IPv4/IPv6 addresses or CIDRs (10.0.0.0/8), one per line or comma-separated. Empty: any address. A request must pass both this list and its key’s.',
  );
  return formDialog({
    title: `Allowed addresses of ${project.name}`,
    fields: [ips.wrap],
    submitLabel: 'Save allowlist',
    testid: 'project-allowlist-dialog',
    onSubmit: async () => {
      const list = words(ips.input.value);
      const updated = await openai.post(`/projects/${seg(project.id)}`, { allowed_ips: list.length ? list : null });
      announce('Allowlist saved.');
      await onDone(updated);
    },
  });
}

// ------------------------------------------------------------------ the list

export async function renderList(ctx) {
  ctx.setTitle('Projects');
  listState.cursors.reset();
  const listBox = h('div', { 'aria-live': 'polite', 'aria-busy': 'true' });
  const listError = errorSlot('projects-error');

  const toggle = h('input', { type: 'checkbox', id: 'show-archived', checked: listState.includeArchived, 'data-testid': 'show-archived' });
  toggle.addEventListener('change', () => {
    listState.includeArchived = toggle.checked;
    listState.cursors.reset();
    load();
  });

  let createForm = null;
  if (ctx.writable) {
    const name = field('New project name', { required: true, maxlength: 256, autocomplete: 'off', 'data-testid': 'new-project-name' });
    const submit = h('button', { type: 'submit', class: 'primary', 'data-write': true, 'data-testid': 'create-project' }, 'Create project');
    const error = errorSlot('create-project-error');
    createForm = h('form', { class: 'inline-form', 'aria-label': 'Create a project', novalidate: true }, name.wrap, submit, error);
    createForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      await busy(submit, error, async () => {
        const p = await openai.post('/projects', { name: name.input.value });
        name.input.value = '';
        announce(`Project ${p.name} created.`);
        ctx.navigate(`/projects/${p.id}`);
      });
    });
  }

  add(ctx.main, 
    pageHeading('Projects'),
    h('p', { class: 'lede' }, 'Each project holds service accounts and their API keys. Archiving a project stops all of its keys.'),
    createForm,
    section('All projects', h('div', { class: 'toolbar' }, h('label', { class: 'check', for: 'show-archived' }, toggle, ' Show archived projects')), listError, listBox),
  );
  ctx.focusHeading();

  async function load() {
    listBox.setAttribute('aria-busy', 'true');
    const ok = await busy(null, listError, async () => {
      const page = await openai.get('/projects', { limit: 20, after: listState.cursors.current, include_archived: listState.includeArchived });
      if (!ctx.alive()) return;
      fill(listBox, 
        table({
          caption: 'Projects',
          testid: 'projects-table',
          items: page.data,
          empty: 'No projects.',
          rowAttrs: (p) => ({ 'data-testid': 'project-row', 'data-id': p.id, 'data-name': p.name, 'data-status': p.status }),
          columns: [
            { label: 'Name', cell: (p) => h('a', { href: `#/projects/${p.id}`, 'data-testid': 'project-link' }, p.name) },
            { label: 'ID', cell: (p) => h('span', { class: 'mono' }, p.id) },
            { label: 'Status', cell: statusBadge },
            { label: 'Created', cell: (p) => time(p.created_at) },
            { label: 'Actions', cell: (p) => rowActions(ctx, p, load) },
          ],
        }),
        listState.cursors.pager(page, load, { label: 'Project pages' }),
      );
    });
    if (!ok && listState.cursors.current) listState.cursors.reset();
    listBox.setAttribute('aria-busy', 'false');
  }
  await load();
}

function rowActions(ctx, p, reload) {
  if (!ctx.writable || p.status === 'archived') return '';
  return actions(
    smallButton('Rename', `Rename ${p.name}`, () => renameProject(p, reload), { testid: 'rename-project' }),
    smallButton('Archive', `Archive ${p.name}`, () => archiveProject(p, reload), { tone: 'danger-outline', testid: 'archive-project' }),
  );
}

// ------------------------------------------------------------------ one project

export async function renderProject(ctx, projectId) {
  const project = await openai.get(`/projects/${seg(projectId)}`);
  if (!ctx.alive()) return;
  ctx.setTitle(project.name);
  const active = project.status === 'active';
  const rerender = () => ctx.navigate(`/projects/${project.id}`);

  const head = pageHeading(project.name, statusBadge(project));
  const facts = h(
    'dl',
    { class: 'facts', 'data-testid': 'project-facts' },
    h('div', {}, h('dt', {}, 'ID'), h('dd', { class: 'mono' }, project.id)),
    h('div', {}, h('dt', {}, 'Created'), h('dd', {}, time(project.created_at))),
    project.archived_at ? h('div', {}, h('dt', {}, 'Archived'), h('dd', {}, time(project.archived_at))) : null,
    h('div', {}, h('dt', {}, 'Allowed addresses'), h('dd', { 'data-testid': 'project-allowlist' }, allowlistText(project.allowed_ips))),
  );
  const projectActions =
    ctx.writable && active
      ? h(
          'div',
          { class: 'page-actions' },
          h('button', { type: 'button', class: 'secondary', 'data-write': true, 'data-testid': 'rename-project', onclick: () => renameProject(project, rerender) }, 'Rename project'),
          h('button', { type: 'button', class: 'secondary', 'data-write': true, 'data-testid': 'edit-project-allowlist', onclick: () => editProjectAllowlist(project, rerender) }, 'Edit allowed addresses'),
          h('button', { type: 'button', class: 'danger-outline', 'data-write': true, 'data-testid': 'archive-project', onclick: () => archiveProject(project, rerender) }, 'Archive project'),
        )
      : null;

  add(ctx.main, 
    h('p', { class: 'crumbs' }, h('a', { href: '#/projects' }, '← All projects')),
    head,
    facts,
    projectActions,
    active ? null : h('p', { class: 'notice info', 'data-testid': 'archived-notice' }, 'This project is archived: its keys no longer work and nothing in it can be changed.'),
  );
  ctx.focusHeading();

  const keysSection = keys.createSection(ctx, project);
  const accountsSection = active
    ? serviceAccounts.createSection(ctx, project, { onKeysChanged: () => keysSection.reload() })
    : null;
  const limitsSection = rateLimits.createSection(ctx, project);
  add(ctx.main, accountsSection?.node, keysSection.node, limitsSection.node);
  await Promise.all([accountsSection?.reload(), keysSection.reload(), limitsSection.reload()]);
}
