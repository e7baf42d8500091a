// Modal dialogs on the native <dialog> element (focus kept inside, Escape closes, focus goes
// back to where it was): forms and confirmations whose errors stay in the dialog, the
// once-shown secret with its copy button, and a JSON viewer.

import { h, add, nextId, errorSlot, busy } from './dom.js';

function open({ title, testid, wide = false, content, onClose }) {
  const opener = document.activeElement;
  const titleId = nextId('dlg');
  const dialog = h('dialog', { class: wide ? 'dialog wide' : 'dialog', 'aria-labelledby': titleId, 'data-testid': testid });
  add(dialog, h('h2', { id: titleId }, title), content(dialog));
  dialog.addEventListener('close', () => {
    onClose();
    dialog.remove();
    if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
    else document.getElementById('page-title')?.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  const first = dialog.querySelector('[autofocus], input:not([type=hidden]):not([readonly]), select, textarea');
  (first || dialog.querySelector('button'))?.focus();
  return dialog;
}

/**
 * A form in a dialog. `onSubmit(form)` does the work; while it fails its message stays in the
 * dialog beside the buttons and the dialog stays open. Resolves to true when it succeeded,
 * false when cancelled.
 */
export function formDialog({ title, intro, fields = [], submitLabel, tone = 'primary', testid = 'dialog', onSubmit, wide }) {
  return new Promise((resolve) => {
    let done = false;
    open({
      title,
      testid,
      wide,
      onClose: () => resolve(done),
      content: (dialog) => {
        const error = errorSlot('dialog-error');
        const submit = h('button', { type: 'submit', class: tone, 'data-testid': 'dialog-submit' }, submitLabel);
        const cancel = h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close(), 'data-testid': 'dialog-cancel' }, 'Cancel');
        const form = h(
          'form',
          { novalidate: true },
          intro ? h('div', { class: 'intro' }, intro) : null,
          fields,
          error,
          h('div', { class: 'dialog-buttons' }, cancel, submit),
        );
        form.addEventListener('submit', async (ev) => {
          ev.preventDefault();
          const ok = await busy(submit, error, () => onSubmit(form));
          if (ok) {
            done = true;
            dialog.close();
          }
        });
        return [form];
      },
    });
  });
}

/** A yes/no question about a change; `onConfirm` makes it (its error stays in the dialog). */
export function confirmDialog({ title, message, confirmLabel, tone = 'danger', testid = 'confirm-dialog', onConfirm }) {
  return formDialog({ title, intro: message, submitLabel: confirmLabel, tone, testid, onSubmit: onConfirm });
}

async function copy(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    // No clipboard API (plain http from another host): select it for Ctrl+C instead.
    input.focus();
    input.select();
    try {
      return document.execCommand('copy');
    } catch {
      return false;
    }
  }
}

/**
 * A secret shown exactly once. `secrets`: [{label, value, testid, secret: true|false}]. The
 * values live only in this dialog's inputs and are dropped when it closes.
 */
export function secretDialog({ title, intro, secrets, testid = 'secret-dialog' }) {
  return new Promise((resolve) => {
    open({
      title,
      testid,
      wide: true,
      onClose: () => resolve(),
      content: (dialog) => {
        const rows = secrets.map((s) => {
          const id = nextId('secret');
          const input = h('input', { id, type: 'text', readonly: true, value: s.value, class: 'mono', spellcheck: 'false', autocomplete: 'off', 'data-testid': s.testid || 'secret-value' });
          const status = h('span', { class: 'copied', role: 'status' });
          const button = h(
            'button',
            {
              type: 'button',
              class: 'secondary',
              'aria-label': `Copy ${s.label}`,
              'data-testid': `${s.testid || 'secret-value'}-copy`,
              onclick: async () => {
                status.textContent = (await copy(s.value, input)) ? 'Copied.' : 'Select the text and copy it.';
              },
            },
            'Copy',
          );
          input.addEventListener('focus', () => input.select());
          return h('div', { class: 'field secret' }, h('label', { for: id }, s.label), h('div', { class: 'secret-row' }, input, button), status);
        });
        const done = h('button', { type: 'button', class: 'primary', onclick: () => dialog.close(), 'data-testid': 'secret-done' }, 'Done');
        dialog.addEventListener('close', () => rows.forEach((r) => r.querySelectorAll('input').forEach((i) => (i.value = ''))));
        return [
          intro ? h('div', { class: 'intro' }, intro) : null,
          h('p', { class: 'warning', 'data-testid': 'secret-warning' }, 'Copy it now: you will not see this again. keyplane keeps only a hash of it.'),
          ...rows,
          h('div', { class: 'dialog-buttons' }, done),
        ].filter(Boolean);
      },
    });
  });
}

/** A read-only view of a JSON object. */
export function jsonDialog({ title, value, testid = 'json-dialog' }) {
  return new Promise((resolve) => {
    open({
      title,
      testid,
      wide: true,
      onClose: () => resolve(),
      content: (dialog) => [
        h('pre', { class: 'json', tabindex: '0', 'data-testid': 'json', 'aria-label': 'Event JSON' }, JSON.stringify(value, null, 2)),
        h('div', { class: 'dialog-buttons' }, h('button', { type: 'button', class: 'primary', onclick: () => dialog.close() }, 'Close')),
      ],
    });
  });
}
