// DOM helpers every page shares: element building (text only ever through text nodes, never
// innerHTML), times, error slots, list tables that fold into cards on a phone, and a pager.

/**
 * h('button', {type: 'button', onclick: fn, class: 'x', dataset: {id}}, 'Label', child…)
 * Keys starting with "on" add listeners; `hidden`, `disabled`, … take booleans; everything
 * else is an attribute (never `style`: the CSP forbids inline styles).
 */
export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'value') node.value = v;
    else if (k === 'checked') node.checked = Boolean(v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  append(node, children);
  return node;
}

/** Appends children, skipping null/undefined/false (Element.append would write "null"). */
export function add(node, ...children) {
  append(node, children);
  return node;
}

/** Replaces a node's children. */
export const fill = (node, ...children) => add(clear(node), ...children);

function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

let uid = 0;
/** A fresh element ID (labels, aria-describedby). */
export const nextId = (prefix = 'kp') => `${prefix}-${++uid}`;

// ------------------------------------------------------------------ times

const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const DATE_TIME_SECONDS = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A `<time>` for Unix seconds (or an RFC 3339 string); `empty` when there is none. */
export function time(value, empty = '—', { seconds = false } = {}) {
  if (value === null || value === undefined || value === '') return empty;
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, (seconds ? DATE_TIME_SECONDS : DATE_TIME).format(d));
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);

// ------------------------------------------------------------------ messages

/** A paragraph that shows the API's message of a failed action, right where it happened. */
export function errorSlot(testid = 'error') {
  return h('p', { class: 'error', role: 'alert', hidden: true, 'data-testid': testid });
}

export function showError(slot, err) {
  if (err && err.sessionEnded) return; // the sign-in screen says it
  slot.textContent = err instanceof Error ? err.message : String(err);
  slot.hidden = false;
}

export function hideError(slot) {
  slot.textContent = '';
  slot.hidden = true;
}

/** A polite announcement for screen readers (and the test's eyes). */
export function announce(text) {
  const live = document.getElementById('announcer');
  if (!live) return;
  live.textContent = '';
  setTimeout(() => {
    live.textContent = text;
  }, 30);
}

/** Runs `action` with `button` disabled; errors land in `slot`. Resolves to success. */
export async function busy(button, slot, action) {
  if (slot) hideError(slot);
  if (button) button.disabled = true;
  try {
    await action();
    return true;
  } catch (err) {
    if (slot) showError(slot, err);
    else console.error(err);
    return false;
  } finally {
    if (button && button.isConnected) button.disabled = false;
  }
}

// ------------------------------------------------------------------ page frame

/** The page heading (focused on navigation, for keyboard and screen-reader users). */
export function pageHeading(text, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', id: 'page-title' }, text), ...extra);
}

export function section(title, ...children) {
  const id = nextId('sec');
  return h('section', { 'aria-labelledby': id, class: 'panel' }, h('h2', { id }, title), ...children);
}

/** A badge for a state: ok, warn, bad, muted. */
export function badge(text, tone = 'muted') {
  return h('span', { class: `badge ${tone}`, 'data-testid': 'state' }, text);
}

// ------------------------------------------------------------------ tables

/**
 * A list table. `columns`: [{label, cell: (item) => node|string, class?}]; `rowAttrs(item)`
 * gives each row's attributes (data-testid, data-id). On narrow screens the CSS shows each
 * row as a card, every cell labelled by its column (data-label).
 */
export function table({ caption, columns, items, rowAttrs = () => ({}), empty = 'Nothing here yet.', testid }) {
  if (!items.length) return h('p', { class: 'empty', 'data-testid': testid ? `${testid}-empty` : undefined }, empty);
  const head = h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)));
  const rows = items.map((item) =>
    h(
      'tr',
      rowAttrs(item),
      columns.map((c) => h('td', { 'data-label': c.label, class: c.class }, c.cell(item))),
    ),
  );
  return h(
    'div',
    { class: 'table-wrap' },
    h('table', { class: 'list', 'data-testid': testid }, caption ? h('caption', { class: 'visually-hidden' }, caption) : null, h('thead', {}, head), h('tbody', {}, rows)),
  );
}

/** The buttons of a row. */
export const actions = (...buttons) => h('div', { class: 'row-actions' }, buttons);

/** A small button; `label` is visible, `name` (defaults to it) is what assistive tech hears. */
export function smallButton(label, name, onclick, { tone = 'secondary', write = true, testid } = {}) {
  return h(
    'button',
    { type: 'button', class: `small ${tone}`, 'aria-label': name && name !== label ? name : undefined, onclick, 'data-write': write || undefined, 'data-testid': testid },
    label,
  );
}

// ------------------------------------------------------------------ paging

/**
 * Previous / next buttons over cursor pages. `state` holds the cursor stack; `load(cursor)`
 * re-renders. OpenAI lists page forward with `after`: going back re-reads an earlier cursor.
 */
export function pager({ hasMore, onNext, onPrev, hasPrev, label = 'Pages', prevText = '← Previous', nextText = 'Next →' }) {
  if (!hasMore && !hasPrev) return null;
  return h(
    'nav',
    { class: 'pager', 'aria-label': label },
    h('button', { type: 'button', class: 'secondary small', disabled: !hasPrev, onclick: onPrev, 'data-testid': 'page-prev' }, prevText),
    h('button', { type: 'button', class: 'secondary small', disabled: !hasMore, onclick: onNext, 'data-testid': 'page-next' }, nextText),
  );
}

/** A cursor stack for OpenAI lists: `current` is the `after` of the page shown. */
export class Cursors {
  constructor() {
    this.stack = [];
    this.current = undefined;
  }
  next(lastId) {
    this.stack.push(this.current);
    this.current = lastId;
  }
  prev() {
    this.current = this.stack.pop();
  }
  reset() {
    this.stack = [];
    this.current = undefined;
  }
  get hasPrev() {
    return this.stack.length > 0;
  }
  /** The pager under an OpenAI list `page`: moves this stack and calls `reload`. */
  pager(page, reload, options = {}) {
    return pager({
      ...options,
      hasMore: page.has_more,
      hasPrev: this.hasPrev,
      onNext: () => {
        this.next(page.last_id);
        reload();
      },
      onPrev: () => {
        this.prev();
        reload();
      },
    });
  }
}

// ------------------------------------------------------------------ form fields

/** A labelled input: returns {wrap, input}. */
export function field(label, attrs = {}, hint) {
  const id = attrs.id || nextId('f');
  const hintId = hint ? `${id}-hint` : undefined;
  const input = h(attrs.tag || 'input', { ...attrs, tag: undefined, id, 'aria-describedby': hintId });
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
  return { wrap, input };
}

/** A labelled select of [value, text] pairs. */
export function selectField(label, options, attrs = {}, hint) {
  const id = attrs.id || nextId('f');
  const hintId = hint ? `${id}-hint` : undefined;
  const input = h('select', { ...attrs, id, 'aria-describedby': hintId }, options.map(([value, text]) => h('option', { value }, text)));
  if (attrs.value !== undefined) input.value = attrs.value;
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('p', { class: 'hint', id: hintId }, hint) : null);
  return { wrap, input };
}

/** Comma-, space- or newline-separated words → a list. */
export const words = (text) =>
  String(text || '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);

/** "" → null, else a non-negative integer (or throws with a message naming the field). */
export function optionalInteger(text, name, { min = 0 } = {}) {
  const s = String(text ?? '').trim();
  if (s === '') return null;
  if (!/^\d+$/.test(s) || Number(s) < min) throw new Error(`${name} must be a whole number${min > 0 ? ` of at least ${min}` : ''}.`);
  return Number(s);
}
