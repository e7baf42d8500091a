// What the Node e2e files share: each test file that imports this gets its own server. A
// `before` hook starts one `keyplane serve` on a free loopback port with a fresh data dir, a
// bootstrap admin key generated here (independently of keyplane's code) and a configuration
// file holding the model catalogue of MODELS_TOML, waits for /healthz, and the `after` hook
// stops it with SIGTERM.
//
// Environment:
//   KEYPLANE_BIN               keyplane binary (default target/release/keyplane, relative to repo root)
//   KEYPLANE_E2E_DATABASE_URL  if set, handed to the server as KEYPLANE_DATABASE_URL
//   KEYPLANE_E2E_SECRETS_FILE  if set, every secret received (key values, admin keys) is
//                              appended to it, one a line
//   KEYPLANE_E2E_LOG_DIR       if set, the server's stderr log is copied there at the end
//                              (run.sh then checks that no recorded secret is in it)
//   KEYPLANE_E2E_HTTP_RECORDS  if set, every response the SDK client (and the suite's own
//                              gateway checks) receive is appended to it as a JSON line
//                              {suite, method, path, query, status, content_type, body}; run.sh
//                              then validates the OpenAI ones against OpenAI's spec

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import OpenAI from 'openai';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// Ambient OpenAI settings must not leak into the clients (e.g. OpenAI-Organization headers).
for (const k of [
  'OPENAI_API_KEY',
  'OPENAI_ADMIN_KEY',
  'OPENAI_BASE_URL',
  'OPENAI_ORG_ID',
  'OPENAI_PROJECT_ID',
  'OPENAI_WEBHOOK_SECRET',
]) {
  delete process.env[k];
}

// ------------------------------------------------------------------------------ secrets
// Every JSON response any fetch of this suite receives (the SDK's and the tests' own) is
// scanned for secrets, which go to KEYPLANE_E2E_SECRETS_FILE so run.sh can prove none of them
// reached the server's log.

export const SECRET_FIELDS = new Set(['value', 'client_secret', 'access_token', 'refresh_token']);
export const FULL_KEY_RE = /^sk-(admin|svcacct)-[0-9A-Za-z]{49}$/;

export function recordSecret(secret) {
  const file = process.env.KEYPLANE_E2E_SECRETS_FILE;
  if (file && typeof secret === 'string' && secret.length >= 16 && !secret.includes('\n')) {
    fs.appendFileSync(file, secret + '\n');
  }
}

export function collectSecrets(node, field) {
  if (Array.isArray(node)) node.forEach((v) => collectSecrets(v, field));
  else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) collectSecrets(v, k);
  else if (typeof node === 'string' && (SECRET_FIELDS.has(field) || FULL_KEY_RE.test(node))) recordSecret(node);
}

if (process.env.KEYPLANE_E2E_SECRETS_FILE) {
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (...args) => {
    const res = await realFetch(...args);
    if ((res.headers.get('content-type') || '').includes('json')) {
      try {
        collectSecrets(await res.clone().json());
      } catch {
        // Recording must never change what a test sees.
      }
    }
    return res;
  };
}

// ------------------------------------------------------------------------------ key format

export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
export const RAND_LEN = 43;
export const CHECKSUM_LEN = 6;

export const SVCACCT_KEY_RE = /^sk-svcacct-[0-9A-Za-z]{49}$/;
export const ADMIN_KEY_RE = /^sk-admin-[0-9A-Za-z]{49}$/;
export const PROJECT_ID_RE = /^proj_[0-9a-z]{26}$/;
export const SVC_ACCT_ID_RE = /^svc_acct_[0-9a-z]{26}$/;
export const KEY_ID_RE = /^key_[0-9a-z]{26}$/;

// Table-based CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), same as zlib's crc32.
export const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function base62(n, width) {
  let v = BigInt(n);
  if (v < 0n) throw new Error('negative');
  let s = '';
  while (v > 0n) {
    s = BASE62[Number(v % 62n)] + s;
    v /= 62n;
  }
  if (s.length > width) throw new Error(`value does not fit in ${width} base62 chars`);
  return s.padStart(width, '0');
}

export function unbase62(s) {
  let v = 0n;
  for (const ch of s) v = v * 62n + BigInt(BASE62.indexOf(ch));
  return v;
}

export function keyFromBytes(prefix, raw) {
  assert.equal(raw.length, 32);
  const randStr = base62(BigInt('0x' + Buffer.from(raw).toString('hex')), RAND_LEN);
  const checksum = base62(crc32(Buffer.from(randStr, 'ascii')), CHECKSUM_LEN);
  return prefix + randStr + checksum;
}

export function makeKey(prefix) {
  return keyFromBytes(prefix, randomBytes(32));
}

export function keyChecksumOk(key, prefix) {
  if (!key.startsWith(prefix)) return false;
  const body = key.slice(prefix.length);
  if (body.length !== RAND_LEN + CHECKSUM_LEN || ![...body].every((c) => BASE62.includes(c))) return false;
  const randStr = body.slice(0, RAND_LEN);
  const checksum = body.slice(RAND_LEN);
  if (unbase62(randStr) >= 1n << 256n) return false;
  return base62(crc32(Buffer.from(randStr, 'ascii')), CHECKSUM_LEN) === checksum;
}

export function assertSvcacctKey(value) {
  assert.equal(typeof value, 'string');
  assert.match(value, SVCACCT_KEY_RE, `malformed service-account key: ${value}`);
  assert.ok(keyChecksumOk(value, 'sk-svcacct-'), `service-account key checksum does not verify: ${value}`);
}

export function fakeId(prefix) {
  const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';
  let s = prefix;
  for (let i = 0; i < 26; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

export function uniqueName(label) {
  return `e2e-node ${label} ${randomBytes(4).toString('hex')}`;
}

// Cross-language known answer: the Python suite checks the same vector.
export const KNOWN_BYTES = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
export const KNOWN_ADMIN_KEY = 'sk-admin-003aUlTJC7tjlCTQj2uNU3MFagCXG9LRKRcwGkBIDlf1Yo7hP';

// ------------------------------------------------------------------------------ server

export let server; // { baseURL, rootURL, adminKey, dataDir, proc, exited, logs() }

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export async function healthzOk(rootURL) {
  try {
    const r = await fetch(`${rootURL}/healthz`, { signal: AbortSignal.timeout(1000) });
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

/** `keyplane organization create LABEL` prints the new organization's first admin key. */
export function createOrganization(bin, env, cwd, label) {
  const r = spawnSync(bin, ['organization', 'create', label], {
    env,
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  const key = (r.stdout || '').trim();
  recordSecret(key);
  if (r.status !== 0 || !ADMIN_KEY_RE.test(key) || !keyChecksumOk(key, 'sk-admin-')) {
    throw new Error(
      `\`keyplane organization create ${label}\` failed (status ${r.status}, ${r.error || 'no spawn error'}) ` +
        `or printed a malformed admin key ${JSON.stringify(key)}\nstderr:\n${r.stderr}`,
    );
  }
  return key;
}

// The model catalogue the server runs with: what `rate_limits` lists for every project. The
// catch-all is high enough that no other test's checks are ever refused.
export const MODELS_TOML = `
[models."gpt-4o"]
max_requests_per_1_minute = 500
max_tokens_per_1_minute = 30000
max_requests_per_1_day = 10000

[models."o3"]
max_requests_per_1_minute = 100
max_tokens_per_1_minute = 20000
batch_1_day_max_input_tokens = 900000

[models."*"]
max_requests_per_1_minute = 100000
max_tokens_per_1_minute = 100000000
`;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  let bin = process.env.KEYPLANE_BIN || 'target/release/keyplane';
  if (!path.isAbsolute(bin)) bin = path.join(REPO_ROOT, bin);
  if (!fs.existsSync(bin) || !fs.statSync(bin).isFile()) {
    throw new Error(`keyplane binary not found at ${bin} (set KEYPLANE_BIN)`);
  }
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyplane-e2e-node-'));
  let adminKey = makeKey('sk-admin-');
  recordSecret(adminKey);
  assert.match(adminKey, ADMIN_KEY_RE);
  assert.ok(keyChecksumOk(adminKey, 'sk-admin-'));

  const env = { ...process.env };
  env.KEYPLANE_LISTEN = `127.0.0.1:${port}`;
  env.KEYPLANE_DATA_DIR = dataDir;
  env.KEYPLANE_BOOTSTRAP_ADMIN_KEY = adminKey;
  delete env.KEYPLANE_DATABASE_URL;
  if (process.env.KEYPLANE_E2E_DATABASE_URL) env.KEYPLANE_DATABASE_URL = process.env.KEYPLANE_E2E_DATABASE_URL;

  if (process.env.KEYPLANE_E2E_DATABASE_URL) {
    // keyplane honours KEYPLANE_BOOTSTRAP_ADMIN_KEY only on a store that was never
    // initialised; a shared database (used by both suites, kept across runs) would ignore it.
    // Give this run its own organization instead and use the admin key keyplane prints.
    adminKey = createOrganization(bin, env, dataDir, `e2e-node-${randomBytes(4).toString('hex')}`);
  }

  const stderrPath = path.join(dataDir, 'keyplane.stderr.log');
  const stdoutPath = path.join(dataDir, 'keyplane.stdout.log');
  const errFd = fs.openSync(stderrPath, 'w');
  const outFd = fs.openSync(stdoutPath, 'w');
  const configPath = path.join(dataDir, 'keyplane.toml');
  fs.writeFileSync(configPath, MODELS_TOML);
  const proc = spawn(bin, ['--config', configPath, 'serve'], { env, cwd: dataDir, stdio: ['ignore', outFd, errFd] });
  fs.closeSync(errFd);
  fs.closeSync(outFd);
  let spawnError = null;
  proc.on('error', (e) => {
    spawnError = e;
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const logs = () =>
    `--- keyplane stderr (${stderrPath}) ---\n${fs.readFileSync(stderrPath, 'utf8')}\n` +
    `--- keyplane stdout (${stdoutPath}) ---\n${fs.readFileSync(stdoutPath, 'utf8')}`;

  const rootURL = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  let ready = false;
  while (Date.now() < deadline) {
    if (spawnError || proc.exitCode !== null || proc.signalCode !== null) break;
    if (await healthzOk(rootURL)) {
      ready = true;
      break;
    }
    await sleep(100);
  }
  if (!ready) {
    let why;
    if (spawnError) why = `keyplane could not be started: ${spawnError}`;
    else if (proc.exitCode !== null || proc.signalCode !== null)
      why = `keyplane exited (code ${proc.exitCode}, signal ${proc.signalCode}) before ${rootURL}/healthz answered 200`;
    else {
      why = `keyplane did not answer 200 on ${rootURL}/healthz within 20 s`;
      proc.kill('SIGKILL');
      await exited;
    }
    const text = logs();
    console.error(text);
    throw new Error(`${why}\n${text}`);
  }
  server = { baseURL: `${rootURL}/v1`, rootURL, adminKey, dataDir, proc, exited, logs };
});

after(async () => {
  if (!server) return;
  const { proc, exited, dataDir, logs } = server;
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve(null), 10_000);
  });
  const result = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (result === null) {
    proc.kill('SIGKILL');
    await exited;
    throw new Error(`keyplane did not exit within 10 s of SIGTERM\n${logs()}`);
  }
  if (!(result.code === 0 || result.signal === 'SIGTERM')) {
    console.error(`keyplane exited with ${JSON.stringify(result)} after SIGTERM\n${logs()}`);
  }
  if (process.env.KEYPLANE_E2E_LOG_DIR) {
    fs.copyFileSync(path.join(dataDir, 'keyplane.stderr.log'), path.join(process.env.KEYPLANE_E2E_LOG_DIR, `node-${process.pid}.log`));
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

// ------------------------------------------------------------------------------ records
// The SDK client is given this as its `fetch` option: each response is appended to
// KEYPLANE_E2E_HTTP_RECORDS for check_spec_conformance.py (run.sh), unchanged for the caller.

export async function recordingFetch(input, init) {
  const res = await fetch(input, init);
  const file = process.env.KEYPLANE_E2E_HTTP_RECORDS;
  if (file) {
    const req = input instanceof Request ? input : null;
    const url = new URL(req ? req.url : String(input));
    const method = (init?.method ?? req?.method ?? 'GET').toUpperCase();
    const entry = {
      suite: 'node',
      method,
      path: url.pathname,
      query: url.search.replace(/^\?/, ''),
      status: res.status,
      content_type: res.headers.get('content-type'),
      body: await res.clone().text(),
    };
    fs.appendFileSync(file, JSON.stringify(entry) + '\n');
  }
  return res;
}

// ------------------------------------------------------------------------------ helpers

export function makeClient(adminKey = server.adminKey) {
  return new OpenAI({
    baseURL: server.baseURL,
    adminAPIKey: adminKey,
    maxRetries: 0,
    timeout: 15_000,
    fetch: recordingFetch,
  });
}

export const org = () => makeClient().admin.organization;

// `allowed_ips` is keyplane's own field (admission control), like the key objects' limits.
export const PROJECT_KEYS = ['allowed_ips', 'archived_at', 'created_at', 'external_key_id', 'id', 'name', 'object', 'status'];
export const SA_KEYS = ['created_at', 'id', 'name', 'object', 'role'];
export const SA_API_KEY_KEYS = ['created_at', 'expires_at', 'id', 'name', 'object', 'value'];
export const LIST_KEYS = ['data', 'first_id', 'has_more', 'last_id', 'object'];

export const sortedKeys = (o) => Object.keys(o).sort();

export function assertRequestId(headers) {
  assert.ok(headers.get('x-request-id'), 'missing x-request-id');
}

export function assertRecent(ts) {
  const now = Math.floor(Date.now() / 1000);
  assert.ok(Number.isInteger(ts), `not an integer timestamp: ${ts}`);
  assert.ok(ts >= now - 300 && ts <= now + 300, `timestamp ${ts} far from now ${now}`);
}

export function assertProjectShape(d) {
  assert.deepEqual(sortedKeys(d), PROJECT_KEYS, JSON.stringify(d));
  assert.match(d.id, PROJECT_ID_RE);
  assert.equal(d.object, 'organization.project');
  assert.equal(typeof d.name, 'string');
  assert.ok(Number.isInteger(d.created_at));
  assert.ok(['active', 'archived'].includes(d.status), d.status);
  if (d.status === 'active') assert.equal(d.archived_at, null);
  else assert.ok(Number.isInteger(d.archived_at) && d.archived_at >= d.created_at, JSON.stringify(d));
  assert.ok(d.external_key_id === null || typeof d.external_key_id === 'string');
  assert.ok(d.allowed_ips === null || Array.isArray(d.allowed_ips), JSON.stringify(d));
}

/** Common checks on a 4xx raised by the SDK; returns the inner error object. */
export function checkDeterministicError(err, Cls, status) {
  assert.ok(err instanceof Cls, `expected ${Cls.name}, got ${err?.constructor?.name}: ${err}`);
  assert.equal(err.status, status);
  assert.ok(err.error && typeof err.error === 'object', `no error envelope: ${err}`);
  assert.deepEqual(sortedKeys(err.error), ['code', 'message', 'param', 'type'], JSON.stringify(err.error));
  assert.equal(typeof err.error.message, 'string');
  assert.ok(err.error.message.length > 0);
  assert.equal(typeof err.error.type, 'string');
  assert.ok(err.error.type.length > 0);
  assert.equal(err.headers.get('x-should-retry'), 'false');
  assertRequestId(err.headers);
  assert.equal(err.requestID, err.headers.get('x-request-id'));
  return err.error;
}

export async function expectError(promise, Cls, status) {
  let inner;
  await assert.rejects(promise, (err) => {
    inner = checkDeterministicError(err, Cls, status);
    return true;
  });
  return inner;
}

export async function collect(iterable) {
  const out = [];
  for await (const x of iterable) out.push(x);
  return out;
}

export async function allProjects(o, includeArchived) {
  return collect(o.projects.list({ limit: 100, include_archived: includeArchived }));
}

export async function newProject(o, label) {
  return o.projects.create({ name: uniqueName(label) });
}

// ------------------------------------------------------------------------------ key format
