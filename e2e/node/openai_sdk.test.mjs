// keyplane driven end to end by the official `openai` Node SDK (client.admin.organization.*):
// projects, service accounts, their keys and admin keys. The server, the secret and response
// recorders and the shared assertions are in harness.mjs (see its header for the environment).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';

import OpenAI from 'openai';

import {
  PROJECT_ID_RE,
  SVC_ACCT_ID_RE,
  KEY_ID_RE,
  crc32,
  keyFromBytes,
  makeKey,
  keyChecksumOk,
  assertSvcacctKey,
  fakeId,
  uniqueName,
  KNOWN_BYTES,
  KNOWN_ADMIN_KEY,
  server,
  recordingFetch,
  makeClient,
  org,
  SA_KEYS,
  SA_API_KEY_KEYS,
  LIST_KEYS,
  sortedKeys,
  assertRequestId,
  assertRecent,
  assertProjectShape,
  expectError,
  collect,
  allProjects,
  newProject,
} from './harness.mjs';

test('key format self-check', () => {
  assert.equal(keyFromBytes('sk-admin-', KNOWN_BYTES), KNOWN_ADMIN_KEY);
  assert.ok(keyChecksumOk(KNOWN_ADMIN_KEY, 'sk-admin-'));
  // our CRC-32 agrees with zlib's where this Node has it
  if (typeof zlib.crc32 === 'function') {
    for (const s of ['', 'a', '123456789', KNOWN_ADMIN_KEY]) assert.equal(crc32(Buffer.from(s)), zlib.crc32(s));
  }
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  const k = makeKey('sk-svcacct-');
  assertSvcacctKey(k);
  const flipped = k.slice(0, -1) + (k.at(-1) === '0' ? '1' : '0');
  assert.ok(!keyChecksumOk(flipped, 'sk-svcacct-'));
});

// ------------------------------------------------------------------------------ projects

test('projects: create, retrieve, update, list, archive', async () => {
  const o = org();
  const name = uniqueName('lifecycle');
  const { data: created, response } = await o.projects.create({ name }).withResponse();
  assert.equal(response.status, 200);
  assertRequestId(response.headers);
  assertProjectShape(created);
  assert.equal(created.name, name);
  assert.equal(created.status, 'active');
  assert.equal(created.archived_at, null);
  assert.equal(created.external_key_id, null);
  assertRecent(created.created_at);
  const pid = created.id;

  const got = await o.projects.retrieve(pid);
  assertProjectShape(got);
  assert.deepEqual(got, created);

  const newName = uniqueName('renamed');
  const upd = await o.projects.update(pid, { name: newName });
  assertProjectShape(upd);
  assert.equal(upd.id, pid);
  assert.equal(upd.name, newName);
  assert.equal(upd.status, 'active');
  assert.equal(upd.created_at, created.created_at);
  assert.equal((await o.projects.retrieve(pid)).name, newName);

  const listed = await allProjects(o, false);
  const mine = listed.find((p) => p.id === pid);
  assert.ok(mine, 'new project missing from list');
  assert.equal(mine.name, newName);

  const arch = await o.projects.archive(pid);
  assertProjectShape(arch);
  assert.equal(arch.id, pid);
  assert.equal(arch.status, 'archived');
  assertRecent(arch.archived_at);
  assert.ok(arch.archived_at >= arch.created_at);
  assert.equal(arch.name, newName);

  // archiving again: 200, same object
  const again = await o.projects.archive(pid);
  assert.deepEqual(again, arch);
  const got2 = await o.projects.retrieve(pid);
  assert.equal(got2.status, 'archived');
  assert.equal(got2.archived_at, arch.archived_at);

  // list excludes archived unless include_archived=true
  assert.ok(!(await allProjects(o, false)).some((p) => p.id === pid));
  assert.ok(!(await collect(o.projects.list({ limit: 100 }))).some((p) => p.id === pid));
  const withArchived = (await allProjects(o, true)).find((p) => p.id === pid);
  assert.ok(withArchived, 'archived project missing with include_archived=true');
  assert.equal(withArchived.status, 'archived');

  // an archived project can no longer be modified
  const e = await expectError(o.projects.update(pid, { name: uniqueName('nope') }), OpenAI.BadRequestError, 400);
  assert.equal(e.code, 'project_archived');
  assert.equal((await o.projects.retrieve(pid)).name, newName);
});

test('projects: list envelope and pagination', async () => {
  const o = org();
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push((await newProject(o, `page${i}`)).id);

  const page = await o.projects.list({ limit: 1 });
  assert.deepEqual(sortedKeys(page.body), LIST_KEYS);
  assert.equal(page.body.object, 'list');
  assert.equal(page.data.length, 1);
  assert.equal(page.body.has_more, true);
  assert.equal(page.body.first_id, page.data[0].id);
  assert.equal(page.body.last_id, page.data[0].id);
  assertProjectShape(page.data[0]);

  const walked = (await collect(o.projects.list({ limit: 2 }))).map((p) => p.id);
  assert.equal(new Set(walked).size, walked.length, 'an id appeared twice');
  for (const id of ids) assert.ok(walked.includes(id));
  const full = (await collect(o.projects.list({ limit: 100 }))).map((p) => p.id);
  assert.deepEqual(walked, full);
});

test('projects: the default project cannot be archived', async () => {
  const o = org();
  const defaults = (await allProjects(o, true)).filter((p) => p.name === 'Default project');
  assert.equal(defaults.length, 1, JSON.stringify(defaults));
  const dp = defaults[0];
  assert.equal(dp.status, 'active');
  assert.match(dp.id, PROJECT_ID_RE);
  await expectError(o.projects.archive(dp.id), OpenAI.BadRequestError, 400);
  const got = await o.projects.retrieve(dp.id);
  assert.equal(got.status, 'active');
  assert.equal(got.archived_at, null);
});

// ------------------------------------------------------------------------------ service accounts

test('service accounts: create with and without a key', async () => {
  const o = org();
  const pid = (await newProject(o, 'sa-create')).id;
  const sas = o.projects.serviceAccounts;

  const name = uniqueName('with-key');
  const { data: sa, response } = await sas.create(pid, { name }).withResponse();
  assert.equal(response.status, 200);
  assert.deepEqual(sortedKeys(sa), [...SA_KEYS, 'api_key'].sort());
  assert.equal(sa.object, 'organization.project.service_account');
  assert.match(sa.id, SVC_ACCT_ID_RE);
  assert.equal(sa.name, name);
  assert.equal(sa.role, 'member');
  assertRecent(sa.created_at);
  const key = sa.api_key;
  assert.ok(key && typeof key === 'object');
  assert.deepEqual(sortedKeys(key), SA_API_KEY_KEYS);
  assert.equal(key.expires_at, null);
  assert.equal(key.object, 'organization.project.service_account.api_key');
  assert.match(key.id, KEY_ID_RE);
  assert.equal(typeof key.name, 'string');
  assertRecent(key.created_at);
  assertSvcacctKey(key.value);

  const got = await sas.retrieve(sa.id, { project_id: pid });
  assert.deepEqual(sortedKeys(got), SA_KEYS);
  assert.equal(got.id, sa.id);
  assert.equal(got.name, name);
  assert.equal(got.role, 'member');
  assert.equal(got.created_at, sa.created_at);

  const name2 = uniqueName('no-key');
  const sa2 = await sas.create(pid, { name: name2, create_service_account_only: true });
  assert.deepEqual(sortedKeys(sa2), [...SA_KEYS, 'api_key'].sort());
  assert.equal(sa2.api_key, null);
  assert.equal(sa2.role, 'none');
  assert.equal(sa2.name, name2);
  assert.match(sa2.id, SVC_ACCT_ID_RE);
  assert.notEqual(sa2.id, sa.id);
  const got2 = await sas.retrieve(sa2.id, { project_id: pid });
  assert.equal(got2.role, 'none');

  const listed = await collect(sas.list(pid));
  assert.deepEqual(listed.map((s) => s.id).sort(), [sa.id, sa2.id].sort());
  assert.equal(listed.find((s) => s.id === sa.id).role, 'member');
  assert.equal(listed.find((s) => s.id === sa2.id).role, 'none');
});

test('service accounts: 45 accounts auto-paginated with limit=7', async () => {
  const o = org();
  const pid = (await newProject(o, 'sa-45')).id;
  const sas = o.projects.serviceAccounts;
  const created = [];
  for (let i = 0; i < 45; i++) {
    const sa = await sas.create(pid, {
      name: `sa-${String(i).padStart(2, '0')}`,
      create_service_account_only: i % 5 !== 0,
    });
    created.push(sa.id);
  }
  assert.equal(new Set(created).size, 45);

  // SDK auto-pagination
  const seen = [];
  for await (const sa of sas.list(pid, { limit: 7 })) seen.push(sa.id);
  assert.equal(seen.length, 45);
  assert.equal(new Set(seen).size, 45, 'an id appeared twice');
  assert.deepEqual([...seen].sort(), [...created].sort());

  // the same walk page by page, checking the envelope
  const sizes = [];
  const pageIds = [];
  let page = await sas.list(pid, { limit: 7 });
  for (let n = 0; ; n++) {
    assert.ok(n < 20, 'pagination does not terminate');
    const body = page.body;
    assert.deepEqual(sortedKeys(body), LIST_KEYS);
    assert.equal(body.object, 'list');
    const ids = body.data.map((d) => d.id);
    for (const d of body.data) assert.deepEqual(sortedKeys(d), SA_KEYS);
    if (ids.length) {
      assert.equal(body.first_id, ids[0]);
      assert.equal(body.last_id, ids.at(-1));
    } else {
      assert.equal(body.first_id, null);
      assert.equal(body.last_id, null);
    }
    sizes.push(ids.length);
    pageIds.push(...ids);
    if (!page.hasNextPage()) {
      assert.equal(body.has_more, false);
      break;
    }
    assert.equal(body.has_more, true);
    page = await page.getNextPage();
  }
  assert.deepEqual(sizes, [7, 7, 7, 7, 7, 7, 3]);
  assert.deepEqual(pageIds, seen);

  // a limit equal to the remaining count ends with has_more false
  const exact = await sas.list(pid, { limit: 45 });
  assert.equal(exact.data.length, 45);
  assert.equal(exact.body.has_more, false);
  const tail = await sas.list(pid, { limit: 100, after: seen.at(-1) });
  assert.deepEqual(tail.body.data, []);
  assert.equal(tail.body.has_more, false);
  assert.equal(tail.body.first_id, null);
  assert.equal(tail.body.last_id, null);
});

test('service accounts: retrieve, update name and role, delete', async () => {
  const o = org();
  const pid = (await newProject(o, 'sa-rud')).id;
  const sas = o.projects.serviceAccounts;
  const sa = await sas.create(pid, { name: uniqueName('rud') });

  const newName = uniqueName('rud-renamed');
  const upd = await sas.update(sa.id, { project_id: pid, name: newName });
  assert.deepEqual(sortedKeys(upd), SA_KEYS);
  assert.equal(upd.id, sa.id);
  assert.equal(upd.name, newName);
  assert.equal(upd.role, 'member');
  assert.equal(upd.created_at, sa.created_at);

  const upd2 = await sas.update(sa.id, { project_id: pid, role: 'owner' });
  assert.equal(upd2.role, 'owner');
  assert.equal(upd2.name, newName);
  const got = await sas.retrieve(sa.id, { project_id: pid });
  assert.equal(got.role, 'owner');
  assert.equal(got.name, newName);

  const upd3 = await sas.update(sa.id, { project_id: pid, role: 'member', name: sa.name });
  assert.equal(upd3.role, 'member');
  assert.equal(upd3.name, sa.name);

  const del = await sas.delete(sa.id, { project_id: pid });
  assert.deepEqual(del, { object: 'organization.project.service_account.deleted', id: sa.id, deleted: true });

  await expectError(sas.retrieve(sa.id, { project_id: pid }), OpenAI.NotFoundError, 404);
  await expectError(sas.delete(sa.id, { project_id: pid }), OpenAI.NotFoundError, 404);
  await expectError(sas.update(sa.id, { project_id: pid, name: 'ghost' }), OpenAI.NotFoundError, 404);
  assert.ok(!(await collect(sas.list(pid))).some((s) => s.id === sa.id));
});

test('service accounts: add a key (rotation)', async () => {
  const o = org();
  const pid = (await newProject(o, 'sa-rotate')).id;
  const sas = o.projects.serviceAccounts;
  const sa = await sas.create(pid, { name: uniqueName('rotate') });
  const first = sa.api_key;
  assert.ok(first);
  assertSvcacctKey(first.value);

  const { data: second, response } = await sas.apiKeys
    .create(sa.id, { project_id: pid, name: 'rotated' })
    .withResponse();
  assert.equal(response.status, 200);
  assert.deepEqual(sortedKeys(second), SA_API_KEY_KEYS);
  assert.equal(second.expires_at, null);
  assert.equal(second.object, 'organization.project.service_account.api_key');
  assert.equal(second.name, 'rotated');
  assert.match(second.id, KEY_ID_RE);
  assert.notEqual(second.id, first.id);
  assertRecent(second.created_at);
  assertSvcacctKey(second.value);
  assert.notEqual(second.value, first.value);

  const third = await sas.apiKeys.create(sa.id, {
    project_id: pid,
    name: 'scoped',
    scopes: ['api.model.read'],
    expires_in_seconds: 3600,
  });
  assertSvcacctKey(third.value);
  assert.ok(![first.value, second.value].includes(third.value));
  assert.ok(![first.id, second.id].includes(third.id));

  const fourth = await sas.apiKeys.create(sa.id, { project_id: pid }); // every body field optional
  assertSvcacctKey(fourth.value);
  assert.ok(![first.value, second.value, third.value].includes(fourth.value));

  // a service account created without a key can be given one
  const bare = await sas.create(pid, { name: uniqueName('bare'), create_service_account_only: true });
  const late = await sas.apiKeys.create(bare.id, { project_id: pid, name: 'late' });
  assertSvcacctKey(late.value);

  await expectError(
    sas.apiKeys.create(fakeId('svc_acct_'), { project_id: pid, name: 'x' }),
    OpenAI.NotFoundError,
    404,
  );
});

// ------------------------------------------------------------------------------ errors

test('errors: NotFoundError for unknown ids', async () => {
  const o = org();
  const missingProj = fakeId('proj_');
  await expectError(o.projects.retrieve(missingProj), OpenAI.NotFoundError, 404);
  await expectError(o.projects.update(missingProj, { name: 'x' }), OpenAI.NotFoundError, 404);
  await expectError(o.projects.archive(missingProj), OpenAI.NotFoundError, 404);
  await expectError(o.projects.serviceAccounts.list(missingProj), OpenAI.NotFoundError, 404);
  await expectError(o.projects.serviceAccounts.create(missingProj, { name: 'x' }), OpenAI.NotFoundError, 404);

  const pid = (await newProject(o, 'nf')).id;
  const sas = o.projects.serviceAccounts;
  const missingSa = fakeId('svc_acct_');
  await expectError(sas.retrieve(missingSa, { project_id: pid }), OpenAI.NotFoundError, 404);
  await expectError(sas.update(missingSa, { project_id: pid, name: 'x' }), OpenAI.NotFoundError, 404);
  await expectError(sas.delete(missingSa, { project_id: pid }), OpenAI.NotFoundError, 404);

  // a service account is only found under its own project
  const other = (await newProject(o, 'nf-other')).id;
  const sa = await sas.create(pid, { name: 'mine', create_service_account_only: true });
  await expectError(sas.retrieve(sa.id, { project_id: other }), OpenAI.NotFoundError, 404);
});

test('errors: AuthenticationError for a wrong admin key', async () => {
  const unregistered = makeKey('sk-admin-');
  for (const bad of [unregistered, 'not-a-key', 'sk-admin-short']) {
    const c = makeClient(bad);
    const e = await expectError(c.admin.organization.projects.list(), OpenAI.AuthenticationError, 401);
    assert.equal(e.code, 'invalid_api_key');
    await expectError(
      c.admin.organization.projects.create({ name: 'should-not-exist' }),
      OpenAI.AuthenticationError,
      401,
    );
  }
  // the full secret must not be echoed back
  const c = makeClient(unregistered);
  await assert.rejects(c.admin.organization.projects.retrieve(fakeId('proj_')), (err) => {
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.ok(!JSON.stringify(err.error).includes(unregistered), 'error echoes the full key');
    return true;
  });
});

test('errors: BadRequestError project_archived on an archived project', async () => {
  const o = org();
  const sas = o.projects.serviceAccounts;
  const pid = (await newProject(o, 'archived')).id;
  const sa = await sas.create(pid, { name: 'before-archive', create_service_account_only: true });
  await o.projects.archive(pid);

  const calls = [
    () => sas.create(pid, { name: 'after-archive' }),
    () => sas.create(pid, { name: 'after-archive', create_service_account_only: true }),
    () => sas.list(pid),
    () => sas.delete(sa.id, { project_id: pid }),
    () => o.projects.update(pid, { name: 'renamed' }),
  ];
  for (const call of calls) {
    const e = await expectError(call(), OpenAI.BadRequestError, 400);
    assert.equal(e.code, 'project_archived', JSON.stringify(e));
    assert.equal(e.type, 'invalid_request_error');
    assert.ok(e.message.includes(pid), e.message);
  }
});

test('errors: list parameter validation (limit, after)', async () => {
  const o = org();
  const pid = (await newProject(o, 'limits')).id;
  const sas = o.projects.serviceAccounts;
  for (const limit of [0, 101]) {
    let e = await expectError(o.projects.list({ limit }), OpenAI.BadRequestError, 400);
    assert.equal(e.param, 'limit');
    e = await expectError(sas.list(pid, { limit }), OpenAI.BadRequestError, 400);
    assert.equal(e.param, 'limit');
  }
  // edges are accepted
  assert.equal((await o.projects.list({ limit: 1 })).data.length, 1);
  await o.projects.list({ limit: 100 });
  await sas.list(pid, { limit: 100 });

  let e = await expectError(o.projects.list({ after: fakeId('proj_') }), OpenAI.BadRequestError, 400);
  assert.equal(e.param, 'after');
  e = await expectError(sas.list(pid, { after: fakeId('svc_acct_') }), OpenAI.BadRequestError, 400);
  assert.equal(e.param, 'after');
});

// ------------------------------------------------------------------ keys and verification

async function gatewayCheck(key) {
  const headers = key === undefined ? {} : { Authorization: `Bearer ${key}` };
  const r = await recordingFetch(`${server.baseURL}/auth/check`, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  if (key) assert.ok(!text.includes(key), 'a refused key was echoed');
  return r;
}

test('keys: project API keys list, delete one key, verification follows', async () => {
  const o = org();
  const project = await o.projects.create({ name: uniqueName('node-keys') });
  const sa = await o.projects.serviceAccounts.create(project.id, { name: 'worker' });
  const second = await o.projects.serviceAccounts.apiKeys.create(sa.id, { project_id: project.id, name: 'next' });
  const listed = await collect(o.projects.apiKeys.list(project.id, { limit: 1 }));
  assert.deepEqual(listed.map((k) => k.id), [sa.api_key.id, second.id]);
  assert.equal(listed[0].owner.type, 'service_account');
  assert.equal(listed[0].owner.service_account.id, sa.id);
  const one = await o.projects.apiKeys.retrieve(second.id, { project_id: project.id });
  assert.equal(one.redacted_value.startsWith('sk-svcacct-'), true);

  const ok = await gatewayCheck(sa.api_key.value);
  assert.equal(ok.status, 204);
  assert.equal(ok.headers.get('x-keyplane-service-account'), sa.id);
  assert.equal(ok.headers.get('x-keyplane-key-id'), sa.api_key.id);
  const del = await o.projects.apiKeys.delete(sa.api_key.id, { project_id: project.id });
  assert.equal(del.deleted, true);
  assert.equal((await gatewayCheck(sa.api_key.value)).status, 401, 'deleted key refused at once');
  assert.equal((await gatewayCheck(second.value)).status, 204, 'the rotated-in key still works');
  assert.equal((await gatewayCheck(makeKey('sk-svcacct-'))).status, 401);
  assert.equal((await gatewayCheck(undefined)).status, 401);
});

test('keys: expiry on the first key, then update scopes and expiry (openai 7 types both)', async () => {
  const o = org();
  const project = await o.projects.create({ name: uniqueName('node-key-update') });
  const t0 = Math.floor(Date.now() / 1000);
  const sa = await o.projects.serviceAccounts.create(project.id, { name: 'expiring', expires_in_seconds: 3600 });
  assert.ok(sa.api_key.expires_at >= t0 + 3600 && sa.api_key.expires_at <= t0 + 3602, `${sa.api_key.expires_at}`);

  const updated = await o.projects.apiKeys.update(sa.api_key.id, {
    project_id: project.id,
    scopes: ['api.model.read'],
    expires_in_seconds: 600,
  });
  assert.equal(updated.object, 'organization.project.api_key');
  assert.equal(updated.id, sa.api_key.id);
  assert.ok(updated.expires_at >= t0 + 600 && updated.expires_at <= t0 + 602, `${updated.expires_at}`);
  assert.deepEqual(updated.scopes, ['api.model.read']);
  const got = await o.projects.apiKeys.retrieve(sa.api_key.id, { project_id: project.id });
  assert.equal(got.expires_at, updated.expires_at);
  assert.equal((await gatewayCheck(sa.api_key.value)).status, 204, 'a key with a later expiry still works');

  await expectError(
    o.projects.apiKeys.update(fakeId('key_'), { project_id: project.id, scopes: [] }),
    OpenAI.NotFoundError,
    404,
  );
});

test('keys: admin API keys create, list both orders, retrieve, delete', async () => {
  const admin = org().adminAPIKeys;
  const created = await admin.create({ name: uniqueName('node-ci'), expires_in_seconds: 600 });
  assert.ok(created.value.startsWith('sk-admin-'));
  const asNew = makeClient(created.value).admin.organization;
  assert.ok((await collect(asNew.projects.list({ include_archived: true }))).length >= 1);
  const desc = await collect(admin.list({ order: 'desc', limit: 1 }));
  assert.equal(desc[0].id, created.id);
  assert.equal(new Set(desc.map((k) => k.id)).size, desc.length);
  const got = await admin.retrieve(created.id);
  assert.equal(got.value, undefined);
  await admin.delete(created.id);
  await expectError(asNew.projects.list(), OpenAI.AuthenticationError, 401);
  await expectError(admin.retrieve(created.id), OpenAI.NotFoundError, 404);
});
