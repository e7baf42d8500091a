// Project rate limits (admission control), driven by the official `openai` Node SDK's
// client.admin.organization.projects.rateLimits, and enforced by /v1/auth/check. The server
// (harness.mjs) runs with the catalogue of MODELS_TOML: "*", "gpt-4o" and "o3".

import { test } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import { server, org, collect, newProject, expectError, sortedKeys, recordingFetch, LIST_KEYS } from './harness.mjs';

const RATE_LIMIT_KEYS = ['id', 'max_requests_per_1_minute', 'max_tokens_per_1_minute', 'model', 'object'];

async function check(key, model) {
  const headers = { authorization: `Bearer ${key}` };
  if (model) headers['x-keyplane-model'] = model;
  const res = await recordingFetch(`${server.baseURL}/auth/check`, { headers });
  const body = await res.text();
  assert.ok(!body.includes(key), 'a refused key was echoed');
  return res;
}

test('rate limits: every project lists the catalogue with its defaults', async () => {
  const o = org();
  const pid = (await newProject(o, 'rl-list')).id;
  const { data: page, response } = await o.projects.rateLimits.listRateLimits(pid).withResponse();
  assert.equal(response.status, 200);
  // The page keeps the envelope it was built from.
  assert.deepEqual(sortedKeys(page.body), LIST_KEYS);
  assert.equal(page.body.object, 'list');
  assert.deepEqual(page.data.map((r) => r.id), ['rl-*', 'rl-gpt-4o', 'rl-o3']);
  assert.equal(page.has_more, false);
  const byModel = Object.fromEntries(page.data.map((r) => [r.model, r]));
  // Optional fields are absent (not null) where the catalogue gives no value, as OpenAI's are.
  assert.deepEqual(sortedKeys(byModel['*']), RATE_LIMIT_KEYS);
  assert.deepEqual(sortedKeys(byModel['gpt-4o']), [...RATE_LIMIT_KEYS, 'max_requests_per_1_day'].sort());
  assert.deepEqual(sortedKeys(byModel.o3), ['batch_1_day_max_input_tokens', ...RATE_LIMIT_KEYS].sort());
  assert.equal(byModel['gpt-4o'].object, 'project.rate_limit');
  assert.equal(byModel['gpt-4o'].max_requests_per_1_minute, 500);
  assert.equal(byModel['gpt-4o'].max_tokens_per_1_minute, 30000);
  assert.equal(byModel['gpt-4o'].max_requests_per_1_day, 10000);
  assert.equal(byModel.o3.batch_1_day_max_input_tokens, 900000);
});

test('rate limits: limit=1 auto-pagination, after and before', async () => {
  const o = org();
  const pid = (await newProject(o, 'rl-pages')).id;
  const rl = o.projects.rateLimits;
  const all = await collect(rl.listRateLimits(pid, { limit: 1 }));
  assert.deepEqual(all.map((r) => r.id), ['rl-*', 'rl-gpt-4o', 'rl-o3']);
  let page = await rl.listRateLimits(pid, { after: 'rl-*', limit: 1 });
  assert.deepEqual(page.data.map((r) => r.id), ['rl-gpt-4o']);
  assert.equal(page.has_more, true);
  page = await rl.listRateLimits(pid, { before: 'rl-o3' });
  assert.deepEqual(page.data.map((r) => r.id), ['rl-*', 'rl-gpt-4o']);
  for (const limit of [0, 101]) {
    const e = await expectError(rl.listRateLimits(pid, { limit }), OpenAI.BadRequestError, 400);
    assert.equal(e.param, 'limit');
  }
});

test('rate limits: an update overrides one project only, keeps the rest, is audited', async () => {
  const o = org();
  const pid = (await newProject(o, 'rl-update')).id;
  const other = (await newProject(o, 'rl-other')).id;
  const rl = o.projects.rateLimits;
  const updated = await rl.updateRateLimit('rl-gpt-4o', {
    project_id: pid,
    max_requests_per_1_minute: 42,
    max_audio_megabytes_per_1_minute: 3,
  });
  assert.equal(updated.id, 'rl-gpt-4o');
  assert.equal(updated.max_requests_per_1_minute, 42);
  assert.equal(updated.max_audio_megabytes_per_1_minute, 3);
  assert.equal(updated.max_tokens_per_1_minute, 30000);
  const again = await rl.updateRateLimit('rl-gpt-4o', { project_id: pid, max_requests_per_1_day: 77 });
  assert.equal(again.max_requests_per_1_minute, 42);
  assert.equal(again.max_requests_per_1_day, 77);

  const mine = await collect(rl.listRateLimits(pid));
  assert.equal(mine.find((r) => r.model === 'gpt-4o').max_requests_per_1_minute, 42);
  const theirs = await collect(rl.listRateLimits(other));
  assert.equal(theirs.find((r) => r.model === 'gpt-4o').max_requests_per_1_minute, 500);

  const events = await collect(o.auditLogs.list({ project_ids: [pid], event_types: ['rate_limit.updated'] }));
  assert.equal(events.length, 2, JSON.stringify(events));
  const [newest, oldest] = events;
  assert.equal(oldest['rate_limit.updated'].id, 'rl-gpt-4o');
  assert.deepEqual(oldest['rate_limit.updated'].changes_requested, {
    max_requests_per_1_minute: 42,
    max_audio_megabytes_per_1_minute: 3,
  });
  assert.deepEqual(newest['rate_limit.updated'].changes_requested, { max_requests_per_1_day: 77 });
});

test('rate limits: bad input is refused in the envelope and changes nothing', async () => {
  const o = org();
  const pid = (await newProject(o, 'rl-bad')).id;
  const rl = o.projects.rateLimits;
  for (const bad of [{ max_requests_per_1_minute: -1 }, { max_tokens_per_1_minute: 2.5 }, { max_requests_per_1_day: '9' }]) {
    const e = await expectError(rl.updateRateLimit('rl-o3', { project_id: pid, ...bad }), OpenAI.BadRequestError, 400);
    const field = Object.keys(bad)[0];
    assert.ok(e.param === field || e.message.includes(field), JSON.stringify(e));
  }
  const e = await expectError(
    rl.updateRateLimit('rl-unknown-model', { project_id: pid, max_requests_per_1_minute: 1 }),
    OpenAI.NotFoundError,
    404,
  );
  assert.ok(e.message.includes('rl-unknown-model'), e.message);
  const o3 = (await collect(rl.listRateLimits(pid))).find((r) => r.model === 'o3');
  assert.equal(o3.max_requests_per_1_minute, 100);
  assert.equal(o3.max_tokens_per_1_minute, 20000);
});

test('rate limits: a lowered limit is enforced by /v1/auth/check', async () => {
  const o = org();
  const pid = (await newProject(o, 'rl-enforced')).id;
  const sa = await o.projects.serviceAccounts.create(pid, { name: 'caller' });
  const key = sa.api_key.value;
  await o.projects.rateLimits.updateRateLimit('rl-gpt-4o', { project_id: pid, max_requests_per_1_minute: 1 });

  let res = await check(key, 'gpt-4o');
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('x-ratelimit-limit-requests'), '1');
  assert.equal(res.headers.get('x-ratelimit-remaining-requests'), '0');
  assert.match(res.headers.get('x-ratelimit-reset-requests'), /^(\d+m)?\d+(\.\d+)?m?s$/);
  res = await check(key, 'gpt-4o');
  assert.equal(res.status, 429);
  assert.ok(Number(res.headers.get('retry-after')) >= 1);
  assert.equal(res.headers.get('x-keyplane-reason'), 'rate_limit_exceeded');
  // The catch-all counts apart.
  assert.equal((await check(key, 'o3')).status, 204);
});
