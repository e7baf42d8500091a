// A project's rate limits per model (OpenAI's project.rate_limit): one per model of the
// server's [models] catalogue, each editable. Requests per minute and day and tokens per
// minute are enforced at /v1/auth/check; images, audio and batch limits are stored and shown.

import { openai, listAll, seg } from './api.js';
import { h, section, table, actions, smallButton, errorSlot, busy, announce, field, optionalInteger, fill } from './dom.js';
import { formDialog } from './dialogs.js';

const FIELDS = [
  ['max_requests_per_1_minute', 'Requests per minute'],
  ['max_tokens_per_1_minute', 'Tokens per minute'],
  ['max_requests_per_1_day', 'Requests per day'],
  ['max_images_per_1_minute', 'Images per minute'],
  ['max_audio_megabytes_per_1_minute', 'Audio MB per minute'],
  ['batch_1_day_max_input_tokens', 'Batch input tokens per day'],
];

const show = (v) => (v === undefined || v === null ? '—' : Number(v).toLocaleString());

export function createSection(ctx, project) {
  const listBox = h('div', { 'aria-busy': 'true' });
  const listError = errorSlot('rate-limits-error');
  const writable = ctx.writable && project.status === 'active';
  const base = `/projects/${seg(project.id)}/rate_limits`;
  const node = section(
    'Rate limits per model',
    h('p', { class: 'hint' }, 'From the server’s model catalogue. Requests and tokens per minute and requests per day are enforced at /v1/auth/check (the model named in X-Keyplane-Model, else “*”).'),
    listError,
    listBox,
  );
  node.dataset.testid = 'rate-limits-section';

  async function reload() {
    listBox.setAttribute('aria-busy', 'true');
    await busy(null, listError, async () => {
      const limits = await listAll(base);
      if (!ctx.alive()) return;
      fill(
        listBox,
        table({
          caption: 'Rate limits per model',
          testid: 'rate-limits-table',
          items: limits,
          empty: 'No models: the server has no [models] catalogue in its configuration file, so no project is limited.',
          rowAttrs: (r) => ({ 'data-testid': 'rate-limit-row', 'data-id': r.id, 'data-model': r.model }),
          columns: [
            { label: 'Model', cell: (r) => h('span', { class: 'mono strong' }, r.model) },
            ...FIELDS.slice(0, 3).map(([key, label]) => ({ label, cell: (r) => show(r[key]) })),
            {
              label: 'Images, audio, batch',
              cell: (r) => FIELDS.slice(3).map(([key, label]) => h('div', { class: 'small-line' }, `${label}: ${show(r[key])}`)),
            },
            { label: 'Actions', cell: (r) => (writable ? actions(smallButton('Edit', `Edit limits of ${r.model}`, () => edit(r), { testid: 'edit-rate-limit' })) : '') },
          ],
        }),
      );
    });
    listBox.setAttribute('aria-busy', 'false');
  }

  function edit(r) {
    const inputs = FIELDS.map(([key, label]) => [key, label, field(label, { type: 'number', min: 0, inputmode: 'numeric', value: r[key] ?? '', 'data-testid': `rl-${key}` })]);
    return formDialog({
      title: `Limits of ${r.model} in ${project.name}`,
      intro: h('p', {}, 'Only changed values are sent; 0 refuses every request. A limit cannot be removed, only changed.'),
      fields: inputs.map(([, , f]) => f.wrap),
      submitLabel: 'Save limits',
      testid: 'edit-rate-limit-dialog',
      onSubmit: async () => {
        const body = {};
        for (const [key, label, f] of inputs) {
          const v = optionalInteger(f.input.value, label);
          if (v !== null && v !== (r[key] ?? null)) body[key] = v;
        }
        await openai.post(`${base}/${seg(r.id)}`, body);
        announce(`Limits of ${r.model} saved.`);
        await reload();
      },
    });
  }

  return { node, reload };
}
