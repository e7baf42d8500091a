// One `keyplane serve` for the console test: a free loopback port, a fresh data dir (or
// KEYPLANE_E2E_DATABASE_URL), /healthz polled until it answers, the bootstrap admin key read
// from what the server prints on its first start (as a new user would), SIGTERM at the end.
// Modelled on e2e/node/harness.mjs (copied, not imported: this package stands alone).
//
// Environment:
//   KEYPLANE_BIN               keyplane binary (default target/release/keyplane, relative to the repo root)
//   KEYPLANE_E2E_DATABASE_URL  if set, handed to the server as KEYPLANE_DATABASE_URL
//   KEYPLANE_E2E_SECRETS_FILE  if set, every secret the test sees is appended to it, one a line
//   KEYPLANE_E2E_LOG_DIR       if set, the server's stderr log is copied there at the end

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ADMIN_KEY_RE = /^sk-admin-[0-9A-Za-z]{49}$/;
export const SVCACCT_KEY_RE = /^sk-svcacct-[0-9A-Za-z]{49}$/;
const FULL_KEY_RE = /^sk-(admin|svcacct)-[0-9A-Za-z]{49}$/;
const SECRET_FIELDS = new Set(['value', 'client_secret', 'access_token', 'refresh_token', 'csrf_token']);

const MODELS_TOML = `
[models."gpt-4o"]
max_requests_per_1_minute = 500
max_tokens_per_1_minute = 30000
max_requests_per_1_day = 10000

[models."*"]
max_requests_per_1_minute = 100000
max_tokens_per_1_minute = 100000000
`;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ secrets

export function recordSecret(secret) {
  const file = process.env.KEYPLANE_E2E_SECRETS_FILE;
  if (file && typeof secret === 'string' && secret.length >= 16 && !secret.includes('\n')) {
    fs.appendFileSync(file, secret + '\n');
  }
}

/** Every secret-looking value of a JSON body (what the browser or the test received). */
export function collectSecrets(node, field) {
  if (Array.isArray(node)) node.forEach((v) => collectSecrets(v, field));
  else if (node && typeof node === 'object') for (const [k, v] of Object.entries(node)) collectSecrets(v, k);
  else if (typeof node === 'string' && (SECRET_FIELDS.has(field) || FULL_KEY_RE.test(node))) recordSecret(node);
}

// ------------------------------------------------------------------ the server

function freePort() {
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

async function healthzOk(rootURL) {
  try {
    const r = await fetch(`${rootURL}/healthz`, { signal: AbortSignal.timeout(1000) });
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

// What `serve` prints on the first start of an empty store (plain text, also under
// KEYPLANE_LOG_FORMAT=json): the one place the bootstrap key appears.
const BANNER_KEY_RE = /first start\. Admin API key for organization "[^"]*" \(shown only once\):\s*(sk-admin-[0-9A-Za-z]{49})/;

export function binaryPath() {
  let bin = process.env.KEYPLANE_BIN || 'target/release/keyplane';
  if (!path.isAbsolute(bin)) bin = path.join(REPO_ROOT, bin);
  return bin;
}

export async function startServer() {
  const bin = binaryPath();
  if (!fs.existsSync(bin) || !fs.statSync(bin).isFile()) throw new Error(`keyplane binary not found at ${bin} (set KEYPLANE_BIN)`);
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyplane-e2e-console-'));
  const env = { ...process.env };
  env.KEYPLANE_LISTEN = `127.0.0.1:${port}`;
  env.KEYPLANE_DATA_DIR = dataDir;
  for (const k of ['KEYPLANE_DATABASE_URL', 'KEYPLANE_BOOTSTRAP_ADMIN_KEY', 'KEYPLANE_CONFIG', 'KEYPLANE_ADMIN_KEY', 'KEYPLANE_PUBLIC_URL', 'KEYPLANE_TLS_CERT', 'KEYPLANE_TLS_KEY']) delete env[k];
  if (process.env.KEYPLANE_E2E_DATABASE_URL) env.KEYPLANE_DATABASE_URL = process.env.KEYPLANE_E2E_DATABASE_URL;

  // A model catalogue, so projects have rate limits to show and edit.
  const configPath = path.join(dataDir, 'keyplane.toml');
  fs.writeFileSync(configPath, MODELS_TOML);
  const stderrPath = path.join(dataDir, 'keyplane.stderr.log');
  const errFd = fs.openSync(stderrPath, 'w');
  const proc = spawn(bin, ['--config', configPath, 'serve'], { env, cwd: dataDir, stdio: ['ignore', 'ignore', errFd] });
  fs.closeSync(errFd);
  let spawnError = null;
  proc.on('error', (e) => {
    spawnError = e;
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const log = () => fs.readFileSync(stderrPath, 'utf8');
  const rootURL = `http://127.0.0.1:${port}`;
  const server = { rootURL, dataDir, proc, exited, log, stderrPath, adminKey: null, keySource: null };

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
    const why = spawnError
      ? `keyplane could not be started: ${spawnError}`
      : proc.exitCode !== null || proc.signalCode !== null
        ? `keyplane exited (code ${proc.exitCode}, signal ${proc.signalCode}) before /healthz answered`
        : `keyplane did not answer 200 on ${rootURL}/healthz within 20 s`;
    await stopServer(server);
    throw new Error(`${why}\n--- stderr ---\n${log()}`);
  }

  const printed = log().match(BANNER_KEY_RE);
  if (printed) {
    server.adminKey = printed[1];
    server.keySource = 'printed by the first start';
  } else {
    // A database that was already initialised prints nothing: a new organization of its own.
    const label = `e2e-console-${randomBytes(4).toString('hex')}`;
    const r = spawnSync(bin, ['organization', 'create', label], { env, cwd: dataDir, encoding: 'utf8', timeout: 30_000 });
    const key = (r.stdout || '').trim();
    if (r.status !== 0 || !ADMIN_KEY_RE.test(key)) {
      await stopServer(server);
      throw new Error(`no bootstrap key printed, and \`keyplane organization create\` failed (${r.status}): ${r.stderr}`);
    }
    server.adminKey = key;
    server.keySource = `of the new organization ${label} (the store was already initialised)`;
  }
  recordSecret(server.adminKey);
  return server;
}

/** The log without the first-start banner, which holds the bootstrap key on purpose. */
function logWithoutBanner(text) {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('keyplane: first start.'));
  if (at < 0) return text;
  let start = at;
  while (start > 0 && lines[start - 1].trim() === '') start--;
  let end = lines.findIndex((l, i) => i > at && l.startsWith('Use it as:'));
  if (end < 0) end = at + 2;
  while (end + 1 < lines.length && lines[end + 1].trim() === '') end++;
  return [...lines.slice(0, start), ...lines.slice(end + 1)].join('\n');
}

export async function stopServer(server) {
  if (!server) return;
  const { proc, exited, dataDir, stderrPath } = server;
  if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
  let timer;
  const result = await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(() => resolve(null), 10_000)))]);
  clearTimeout(timer);
  if (result === null) {
    proc.kill('SIGKILL');
    await exited;
  }
  if (process.env.KEYPLANE_E2E_LOG_DIR && fs.existsSync(stderrPath)) {
    fs.writeFileSync(path.join(process.env.KEYPLANE_E2E_LOG_DIR, `console-${process.pid}.log`), logWithoutBanner(fs.readFileSync(stderrPath, 'utf8')));
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  if (result === null) throw new Error('keyplane did not exit within 10 s of SIGTERM');
}
