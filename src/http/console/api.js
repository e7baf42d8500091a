// The console's only way to the server: the public API (the same paths the SDKs use) and the
// console session endpoints, with the session cookie (never an Authorization header) and the
// CSRF token on every request that changes something. A 401 from any call ends the session:
// the handler main.js registers takes the user back to the sign-in screen.

let csrfToken = null;
let organizationId = null;
let sessionEndedHandler = () => {};
let ended = false;

export class ApiError extends Error {
  constructor(status, message, code = null, param = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.param = param;
    // Set when this error ended the session: the sign-in screen says so, callers need not.
    this.sessionEnded = false;
  }
}

/** Called with the ApiError of the first 401 after a sign-in. */
export function onSessionEnded(handler) {
  sessionEndedHandler = handler;
}

/** Remember what the session object says (or forget it, with null). */
export function useSession(session) {
  csrfToken = session ? session.csrf_token : null;
  organizationId = session ? session.organization_id : null;
  ended = false;
}

// The API's message, whichever envelope: OpenAI's {error: {message, code, param}}, Keycard's
// {message, code, status}, OAuth's {error, error_description}.
function describe(status, data, text) {
  if (data && typeof data === 'object') {
    const e = data.error;
    if (e && typeof e === 'object' && typeof e.message === 'string') {
      return [e.message, e.code ?? null, e.param ?? null];
    }
    if (typeof data.message === 'string') return [data.message, data.code ?? null, null];
    if (typeof e === 'string') return [data.error_description || e, e, null];
  }
  const snippet = (text || '').trim().slice(0, 200);
  return [`The server answered ${status}${snippet ? `: ${snippet}` : '.'}`, null, null];
}

/** `{a: 1, 'b[]': ['x', 'y']}` → `a=1&b[]=x&b[]=y`; empty values are left out. */
export function queryString(query) {
  const parts = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    const values = Array.isArray(v) ? v : [v];
    for (const one of values) {
      if (one === undefined || one === null || one === '') continue;
      parts.append(k, String(one));
    }
  }
  return parts.toString();
}

/**
 * One request. Resolves to the parsed JSON body (null for an empty one); rejects with an
 * ApiError carrying the API's own message. `sessionCall`: a 401 is an answer about the
 * sign-in itself, not the end of a session.
 */
export async function request(method, path, { query, body, sessionCall = false } = {}) {
  const qs = queryString(query);
  const url = qs ? `${path}?${qs}` : path;
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-Keyplane-CSRF'] = csrfToken;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, { method, headers, body: payload, credentials: 'same-origin', cache: 'no-store', redirect: 'error' });
  } catch (e) {
    throw new ApiError(0, `Could not reach the server (${e.message}).`, 'network_error');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const [message, code, param] = describe(res.status, data, text);
  const err = new ApiError(res.status, message, code, param);
  if (res.status === 401 && !sessionCall) {
    err.sessionEnded = true;
    if (!ended) {
      ended = true;
      csrfToken = null;
      sessionEndedHandler(err);
    }
  }
  throw err;
}

// ------------------------------------------------------------------ the console session

export const session = {
  get: () => request('GET', '/console/api/session', { sessionCall: true }),
  signIn: (adminKey) => request('POST', '/console/api/session', { body: { admin_key: adminKey }, sessionCall: true }),
  signOut: () => request('DELETE', '/console/api/session', { sessionCall: true }),
};

// ------------------------------------------------------------------ OpenAI dialect

const ORG = '/v1/organization';

export const openai = {
  get: (path, query) => request('GET', ORG + path, { query }),
  post: (path, body) => request('POST', ORG + path, { body }),
  del: (path, query) => request('DELETE', ORG + path, { query }),
};

/** Every item of an OpenAI list (following `has_more`), up to `max` items. */
export async function listAll(path, query = {}, max = 1000) {
  const items = [];
  let after;
  for (;;) {
    const page = await openai.get(path, { ...query, limit: 100, after });
    items.push(...page.data);
    if (!page.has_more || !page.last_id || items.length >= max) return items;
    after = page.last_id;
  }
}

// ------------------------------------------------------------------ Keycard dialect

// The Keycard dialect names the organization by its bare ID (or its label): the session's
// `organization_id` may carry the OpenAI dialect's prefix.
function keycardOrganization() {
  const id = organizationId || '';
  return encodeURIComponent(id.replace(/^org[-_]/, ''));
}

export const keycard = {
  get: (path, query) => request('GET', `/organizations/${keycardOrganization()}${path}`, { query }),
  post: (path, body) => request('POST', `/organizations/${keycardOrganization()}${path}`, { body }),
  patch: (path, body) => request('PATCH', `/organizations/${keycardOrganization()}${path}`, { body }),
  del: (path) => request('DELETE', `/organizations/${keycardOrganization()}${path}`),
};

/** An ID as a path segment. */
export const seg = (id) => encodeURIComponent(id);
