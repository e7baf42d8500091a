// Workload identity federation configuration, driven by the official `openai` Node SDK's own
// resources: client.admin.organization.workloadIdentityProviders and its .federationRules. The
// server (harness.mjs) is this file's own; every provider made here is deleted again, its rules
// first (a provider with rules cannot be deleted, and an organization may hold at most 50).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';

import OpenAI from 'openai';

import {
  PROJECT_ID_RE,
  SVC_ACCT_ID_RE,
  LIST_KEYS,
  org,
  collect,
  newProject,
  expectError,
  fakeId,
  uniqueName,
  sortedKeys,
  assertRecent,
  assertRequestId,
} from './harness.mjs';

const PROVIDER_ID_RE = /^idp_[0-9a-z]{26}$/;
const RULE_ID_RE = /^fedrule_[0-9a-z]{26}$/;
const PROVIDER_KEYS = [
  'attribute_transformations',
  'audience',
  'created_at',
  'description',
  'enabled',
  'id',
  'issuer',
  'name',
  'object',
  'type',
  'updated_at',
  'verification',
];
const RULE_KEYS = [
  'attribute_matchers',
  'created_at',
  'description',
  'enabled',
  'id',
  'name',
  'object',
  'permissions',
  'project_id',
  'service_account_id',
  'updated_at',
  'workload_identity_provider_id',
];
const ISSUER = 'https://token.actions.githubusercontent.com';
const ED25519_JWK = { kty: 'OKP', crv: 'Ed25519', kid: 'k1', x: 'UeXj21Mdi24wv786kOHEjeyfcTiZSXWxo38Er_1ESmg' };

// Providers this file created; `after` deletes what a failed test left (rules first).
const made = new Set();

async function newProvider(o, label, extra = {}) {
  const p = await o.workloadIdentityProviders.create({
    name: uniqueName(label),
    type: 'oidc',
    issuer: ISSUER,
    audience: 'keyplane-e2e',
    ...extra,
  });
  made.add(p.id);
  return p;
}

after(async () => {
  const wip = org().workloadIdentityProviders;
  for (const id of made) {
    try {
      for (const r of await collect(wip.federationRules.list(id, { limit: 100 }))) {
        await wip.federationRules.delete(r.id, { workload_identity_provider_id: id });
      }
      await wip.delete(id);
    } catch (e) {
      if (!(e instanceof OpenAI.NotFoundError)) throw e;
    }
  }
});

function assertProviderShape(p) {
  assert.deepEqual(sortedKeys(p), PROVIDER_KEYS, JSON.stringify(p));
  assert.match(p.id, PROVIDER_ID_RE);
  assert.equal(p.object, 'organization.workload_identity_provider');
  assert.equal(p.type, 'oidc');
  assert.ok(p.description === null || typeof p.description === 'string');
  assert.equal(typeof p.enabled, 'boolean');
  assert.ok(Array.isArray(p.attribute_transformations));
  for (const t of p.attribute_transformations) assert.deepEqual(sortedKeys(t), ['attribute', 'expression']);
  if (p.verification.type === 'discovery') {
    assert.deepEqual(sortedKeys(p.verification), ['discovery_url', 'type']);
  } else {
    assert.equal(p.verification.type, 'uploaded_jwks');
    assert.deepEqual(sortedKeys(p.verification), ['jwks', 'type']);
  }
  assertRecent(p.created_at);
  assert.ok(Number.isInteger(p.updated_at) && p.updated_at >= p.created_at);
}

function assertRuleShape(r) {
  assert.deepEqual(sortedKeys(r), RULE_KEYS, JSON.stringify(r));
  assert.match(r.id, RULE_ID_RE);
  assert.equal(r.object, 'organization.workload_identity_federation_rule');
  assert.match(r.workload_identity_provider_id, PROVIDER_ID_RE);
  assert.match(r.project_id, PROJECT_ID_RE);
  assert.match(r.service_account_id, SVC_ACCT_ID_RE);
  assert.ok(r.name === null || typeof r.name === 'string');
  assert.ok(r.description === null || typeof r.description === 'string');
  assert.ok(['service_account_default', 'restricted'].includes(r.permissions.type), JSON.stringify(r));
  for (const v of Object.values(r.attribute_matchers)) assert.ok(['string', 'boolean', 'number'].includes(typeof v));
  assertRecent(r.created_at);
}

test('workload identity providers: create, retrieve, update (merge), list, delete', async () => {
  const o = org();
  const wip = o.workloadIdentityProviders;
  const name = uniqueName('wif-provider');
  const transformations = [{ attribute: 'repo', expression: 'lower(assertion.repository)' }];
  const { data: created, response } = await wip
    .create({ name, type: 'oidc', issuer: ISSUER, audience: 'keyplane-e2e', attribute_transformations: transformations })
    .withResponse();
  made.add(created.id);
  assert.equal(response.status, 200);
  assertRequestId(response.headers);
  assertProviderShape(created);
  assert.equal(created.name, name);
  assert.equal(created.description, null);
  assert.equal(created.enabled, true);
  assert.deepEqual(created.verification, { type: 'discovery', discovery_url: null });
  assert.deepEqual(created.attribute_transformations, transformations);
  assert.equal(created.updated_at, created.created_at);

  assert.deepEqual(await wip.retrieve(created.id), created);

  const described = await wip.update(created.id, { description: 'CI of acme' });
  assertProviderShape(described);
  assert.equal(described.description, 'CI of acme');
  assert.equal(described.name, name, 'omitted fields stay');
  assert.deepEqual(described.attribute_transformations, transformations);

  const switched = await wip.update(created.id, {
    description: null,
    verification: { type: 'uploaded_jwks', jwks: { keys: [ED25519_JWK] } },
  });
  assertProviderShape(switched);
  assert.equal(switched.description, null);
  assert.deepEqual(switched.verification, { type: 'uploaded_jwks', jwks: { keys: [ED25519_JWK] } });
  assert.equal(switched.issuer, ISSUER);
  assert.equal(switched.audience, 'keyplane-e2e');
  // No body fields: `{}`, nothing changes.
  assert.deepEqual(await wip.update(created.id), switched);

  const second = await newProvider(o, 'wif-provider-2');
  const third = await newProvider(o, 'wif-provider-3');
  const ids = [created.id, second.id, third.id];
  const page = await wip.list({ limit: 1 });
  assert.deepEqual(sortedKeys(page.body), LIST_KEYS);
  assert.equal(page.body.object, 'list');
  assert.equal(page.data.length, 1);
  assert.equal(page.has_more, true);
  assertProviderShape(page.data[0]);
  const walked = (await collect(wip.list({ limit: 1 }))).map((p) => p.id);
  assert.deepEqual(walked.filter((id) => ids.includes(id)), ids, 'limit=1 auto-pagination, oldest first');
  assert.equal(new Set(walked).size, walked.length);
  const desc = (await collect(wip.list({ order: 'desc' }))).map((p) => p.id);
  assert.deepEqual(desc, [...walked].reverse());

  for (const id of ids) {
    const gone = await wip.delete(id);
    assert.deepEqual(gone, { object: 'organization.workload_identity_provider.deleted', id, deleted: true });
    made.delete(id);
  }
  const e = await expectError(wip.retrieve(created.id), OpenAI.NotFoundError, 404);
  assert.ok(e.message.includes(created.id), e.message);
});

test('federation rules: create, retrieve, update, list with a filter, delete; the delete guard', async () => {
  const o = org();
  const wip = o.workloadIdentityProviders;
  const rules = wip.federationRules;
  const project = await newProject(o, 'wif-rules');
  const builder = await o.projects.serviceAccounts.create(project.id, { name: 'builder', create_service_account_only: true });
  const deployer = await o.projects.serviceAccounts.create(project.id, { name: 'deployer', create_service_account_only: true });
  const provider = await newProvider(o, 'wif-rules');

  const matchers = { sub: 'repo:acme/api:environment:prod', run_attempt: 1, ref_protected: true };
  const rule = await rules.create(provider.id, {
    project_id: project.id,
    service_account_id: builder.id,
    attribute_matchers: matchers,
    name: 'prod deploys',
  });
  assertRuleShape(rule);
  assert.equal(rule.workload_identity_provider_id, provider.id);
  assert.equal(rule.project_id, project.id);
  assert.equal(rule.service_account_id, builder.id);
  assert.equal(rule.name, 'prod deploys');
  assert.equal(rule.description, null);
  assert.equal(rule.enabled, true);
  assert.deepEqual(rule.attribute_matchers, matchers);
  assert.deepEqual(rule.permissions, { type: 'service_account_default' });

  assert.deepEqual(await rules.retrieve(rule.id, { workload_identity_provider_id: provider.id }), rule);

  const updated = await rules.update(rule.id, {
    workload_identity_provider_id: provider.id,
    name: null,
    enabled: false,
    permissions: { type: 'restricted', scopes: ['api.model.read'] },
  });
  assertRuleShape(updated);
  assert.equal(updated.name, null);
  assert.equal(updated.enabled, false);
  assert.deepEqual(updated.permissions, { type: 'restricted', scopes: ['api.model.read'] });
  assert.deepEqual(updated.attribute_matchers, matchers, 'omitted fields stay');
  assert.equal(updated.service_account_id, builder.id);

  const other = await rules.create(provider.id, {
    project_id: project.id,
    service_account_id: deployer.id,
    attribute_matchers: { repo: 'acme/api' },
  });
  assertRuleShape(other);
  const all = await collect(rules.list(provider.id, { limit: 1 }));
  assert.deepEqual(all.map((r) => r.id), [rule.id, other.id]);
  const desc = await rules.list(provider.id, { order: 'desc' });
  assert.deepEqual(sortedKeys(desc.body), LIST_KEYS);
  assert.deepEqual(desc.data.map((r) => r.id), [other.id, rule.id]);
  const filtered = await rules.list(provider.id, { service_account_id: deployer.id });
  assert.deepEqual(filtered.data.map((r) => r.id), [other.id]);
  assert.equal(filtered.has_more, false);

  // A provider with rules stays until they are gone.
  const refused = await expectError(wip.delete(provider.id), OpenAI.BadRequestError, 400);
  assert.match(refused.message, /rules/);
  assert.equal((await wip.retrieve(provider.id)).id, provider.id);

  for (const r of [rule, other]) {
    const gone = await rules.delete(r.id, { workload_identity_provider_id: provider.id });
    assert.deepEqual(gone, { object: 'organization.workload_identity_federation_rule.deleted', id: r.id, deleted: true });
  }
  await expectError(rules.retrieve(rule.id, { workload_identity_provider_id: provider.id }), OpenAI.NotFoundError, 404);
  assert.deepEqual((await wip.delete(provider.id)).deleted, true);
  made.delete(provider.id);
  await expectError(rules.list(provider.id), OpenAI.NotFoundError, 404);

  // The audit log names a rule a "mapping".
  const events = await collect(
    o.auditLogs.list({ event_types: ['workload_identity_provider_mapping.deleted'], limit: 100 }),
  );
  const mineDeleted = events.filter((ev) => [rule.id, other.id].includes(ev['workload_identity_provider_mapping.deleted'].id));
  assert.equal(mineDeleted.length, 2, JSON.stringify(events));
  for (const ev of mineDeleted) {
    assert.equal(ev['workload_identity_provider_mapping.deleted'].identity_provider_id, provider.id);
    assert.equal(ev['workload_identity_provider_mapping.deleted'].project_id, project.id);
  }
});

test('workload identity: bad input is a 400 naming the field, unknown ids a 404', async () => {
  const o = org();
  const wip = o.workloadIdentityProviders;
  const good = { name: uniqueName('wif-bad'), type: 'oidc', issuer: ISSUER, audience: 'a' };
  const before = (await collect(wip.list({ limit: 100 }))).map((p) => p.id);

  let e = await expectError(wip.create({ ...good, type: 'saml' }), OpenAI.BadRequestError, 400);
  assert.equal(e.param, 'type');
  assert.equal(e.type, 'invalid_request_error');
  e = await expectError(wip.create({ ...good, issuer: 'http://token.example.com' }), OpenAI.BadRequestError, 400);
  assert.equal(e.param, 'issuer');
  e = await expectError(
    wip.create({ ...good, attribute_transformations: [{ attribute: 'n', expression: 'size(assertion.sub)' }] }),
    OpenAI.BadRequestError,
    400,
  );
  assert.equal(e.param, 'attribute_transformations');
  assert.deepEqual((await collect(wip.list({ limit: 100 }))).map((p) => p.id), before, 'nothing was created');

  const project = await newProject(o, 'wif-bad');
  const sa = await o.projects.serviceAccounts.create(project.id, { name: 'target', create_service_account_only: true });
  const provider = await newProvider(o, 'wif-bad');
  e = await expectError(
    wip.federationRules.create(provider.id, { project_id: project.id, service_account_id: sa.id, attribute_matchers: {} }),
    OpenAI.BadRequestError,
    400,
  );
  assert.equal(e.param, 'attribute_matchers');

  await expectError(wip.retrieve(fakeId('idp_')), OpenAI.NotFoundError, 404);
  await expectError(wip.update(fakeId('idp_'), { name: 'x' }), OpenAI.NotFoundError, 404);
  await expectError(wip.delete(fakeId('idp_')), OpenAI.NotFoundError, 404);
  await expectError(
    wip.federationRules.retrieve(fakeId('fedrule_'), { workload_identity_provider_id: provider.id }),
    OpenAI.NotFoundError,
    404,
  );
  await expectError(
    wip.federationRules.create(fakeId('idp_'), { project_id: project.id, service_account_id: sa.id, attribute_matchers: { sub: 'x' } }),
    OpenAI.NotFoundError,
    404,
  );
  await wip.delete(provider.id);
  made.delete(provider.id);
});
