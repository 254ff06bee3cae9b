// wsdirect browser client: ask the auth service for a node and a single-use
// connection token, open the WebSocket straight to that node, and whenever
// the connection is lost go back to auth (never to the old URL with the old
// token) after a full-jitter exponential backoff.
//
// An ES module with no dependencies. It mirrors the Go client in client/ and
// the contract in wire/: keep CONNECT_PATH, the token transport and
// shouldReconnect in step with wire/wire.go and wire/closecode.go (the Go
// test in client/js checks shouldReconnect against wire.ShouldReconnect).
//
//   import { connect } from './wsdirect.js';
//   const c = connect({
//     authURL: 'https://auth.example.com',
//     credentials: { username: 'alice', password: 's3cret' },
//     onMessage: (data) => console.log(data),
//     onStateChange: (state) => console.log(state),
//   });
//   c.send('hello');
//   c.close();

/** The auth endpoint, relative to authURL (wire.ConnectPath). */
export const CONNECT_PATH = '/v1/connect';
/** Query parameter that carries the token (wire.TokenQueryParam). */
export const TOKEN_QUERY_PARAM = 'token';
/** Subprotocol every client offers (wire.Subprotocol). */
export const SUBPROTOCOL = 'wsdirect';
/** Prefix of the Sec-WebSocket-Protocol entry carrying the token (wire.SubprotocolTokenPrefix). */
export const SUBPROTOCOL_TOKEN_PREFIX = 'wsdirect.token.';

/** Close codes the servers send (wire/closecode.go). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  SERVER_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  BAD_GATEWAY: 1014,
  DRAINING: 4000,
  SHUTDOWN: 4001,
  UPSTREAM_UNAVAILABLE: 4002,
  REBALANCE: 4003,
  POLICY: 4500,
});

/**
 * The connect-request reason after a close with CloseCode.REBALANCE
 * (wire.ReasonRebalance): auth then places the client on the least loaded
 * node, which does not move it again for a while.
 */
export const REASON_REBALANCE = 'rebalance';

/** Connection states, in the order a healthy connection passes them. */
export const State = Object.freeze({
  AUTHENTICATING: 'authenticating', // POST /v1/connect in flight
  CONNECTING: 'connecting', // WebSocket handshake with the node in flight
  OPEN: 'open', // connected; send() works
  WAITING: 'waiting', // backing off before going back to auth
  CLOSED: 'closed', // stopped for good: close(), bad credentials, or a "do not reconnect" code
});

// Standard codes after which the client goes back to auth. Everything else
// below 4000 (1000 normal, 1008 policy, 1009 too big, ...) is deliberate:
// reconnecting would only repeat it.
const RECONNECT_CODES = new Set([1001, 1006, 1011, 1012, 1013, 1014]);

/**
 * Reports whether a connection closed with code should go back to auth for
 * a new node and token. Same table as wire.ShouldReconnect: 4000–4499 yes,
 * 4500–4999 no, 1001/1006/1011/1012/1013/1014 yes, anything else no.
 * @param {number} code
 * @returns {boolean}
 */
export function shouldReconnect(code) {
  if (code >= 4000 && code < 4500) return true;
  if (code >= 4500 && code < 5000) return false;
  return RECONNECT_CODES.has(code);
}

/**
 * Upper bound of the backoff window for a 0-based attempt:
 * min(capMs, baseMs * 2^attempt).
 * @param {number} attempt
 * @param {{baseMs: number, capMs: number}} backoff
 */
export function backoffWindow(attempt, { baseMs, capMs }) {
  if (!(baseMs > 0)) return 0;
  // Math.pow overflows to Infinity, never wraps, so the min is safe.
  return Math.min(capMs, baseMs * Math.pow(2, Math.max(0, attempt)));
}

/**
 * Full-jitter delay: uniform in [0, window), but at least floorMs (a
 * server's Retry-After). Full jitter spreads the clients of a lost node over
 * the whole window instead of sending them back to auth in waves.
 * @param {number} attempt
 * @param {{baseMs: number, capMs: number}} backoff
 * @param {number} [floorMs]
 * @param {() => number} [random] uniform in [0, 1)
 */
export function backoffDelay(attempt, backoff, floorMs = 0, random = Math.random) {
  const d = Math.floor(random() * backoffWindow(attempt, backoff));
  return Math.max(d, floorMs > 0 ? floorMs : 0);
}

/**
 * Reads a Retry-After header (delay-seconds or HTTP-date) as milliseconds;
 * garbage and absent headers read as 0, since the header is only a hint.
 * @param {string|null|undefined} value
 * @param {number} [nowMs]
 */
export function parseRetryAfter(value, nowMs = Date.now()) {
  if (value == null) return 0;
  const v = String(value).trim();
  if (v === '') return 0;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const t = Date.parse(v);
  if (Number.isNaN(t)) return 0;
  return Math.max(0, t - nowMs);
}

/** A non-2xx answer from the auth service, or a failure to reach it. */
export class AuthError extends Error {
  /**
   * @param {string} message
   * @param {{status?: number, code?: string, retryAfterMs?: number, cause?: unknown}} [info]
   */
  constructor(message, { status = 0, code = '', retryAfterMs = 0, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'AuthError';
    /** HTTP status; 0 when the request never got an answer (network error, timeout). */
    this.status = status;
    /** wire.Error code, e.g. "invalid_credentials", "no_capacity". */
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }

  /**
   * Whether asking again later may succeed: network errors, timeouts, 429
   * and 5xx are temporary; bad credentials and bad requests are not.
   */
  get temporary() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

/**
 * Resolves the auth endpoint from authURL: "https://auth.example.com" →
 * "https://auth.example.com/v1/connect". A relative authURL ("" or "/")
 * resolves against the page's origin, for a page served by the auth service.
 * @param {string} authURL
 * @param {string} [base] location.href in a browser
 */
export function connectEndpoint(authURL, base = globalThis.location?.href) {
  let u;
  try {
    u = base ? new URL(authURL || '/', base) : new URL(authURL);
  } catch (e) {
    throw new TypeError(`wsdirect: authURL ${JSON.stringify(authURL)} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TypeError(`wsdirect: authURL ${JSON.stringify(authURL)}: scheme must be http or https`);
  }
  u.pathname = u.pathname.replace(/\/+$/, '') + CONNECT_PATH;
  u.search = '';
  u.hash = '';
  return u.toString();
}

/**
 * Builds the URL and protocol list for a node WebSocket: the token goes in
 * ?token= (the default; browsers cannot set headers on a WebSocket) or, with
 * tokenInProtocol, as a "wsdirect.token.<jwt>" Sec-WebSocket-Protocol entry
 * next to "wsdirect", which keeps it out of URLs that proxies log.
 * @param {{url: string, token: string}} assignment
 * @param {boolean} [tokenInProtocol]
 * @returns {{url: string, protocols: string[]}}
 */
export function nodeSocketParams(assignment, tokenInProtocol = false) {
  const u = new URL(assignment.url);
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new TypeError(`wsdirect: node url scheme ${u.protocol} is not ws: or wss:`);
  }
  if (tokenInProtocol) {
    return { url: u.toString(), protocols: [SUBPROTOCOL, SUBPROTOCOL_TOKEN_PREFIX + assignment.token] };
  }
  u.searchParams.set(TOKEN_QUERY_PARAM, assignment.token);
  return { url: u.toString(), protocols: [SUBPROTOCOL] };
}

function validateCredentials(creds) {
  if (creds == null || typeof creds !== 'object') {
    throw new TypeError('wsdirect: credentials must be {username, password} or {bearerToken}');
  }
  if (typeof creds.bearerToken === 'string' && creds.bearerToken !== '') return;
  if (typeof creds.username === 'string' && creds.username !== '' && typeof creds.password === 'string') return;
  throw new TypeError('wsdirect: credentials must be {username, password} or {bearerToken}');
}

/**
 * One POST /v1/connect. Resolves to the wire.ConnectResponse
 * {url, token, node_id, expires_at}; rejects with an AuthError.
 * @param {string} authURL
 * @param {{username?: string, password?: string, bearerToken?: string}} credentials
 * @param {{fetch?: typeof fetch, signal?: AbortSignal, timeoutMs?: number, reason?: string}} [opts]
 *   reason: why the client connects, e.g. REASON_REBALANCE (wire.ConnectRequest.Reason)
 */
export async function authorize(authURL, credentials, { fetch: fetchImpl = globalThis.fetch, signal, timeoutMs = 10000, reason = '' } = {}) {
  validateCredentials(credentials);
  const endpoint = connectEndpoint(authURL);
  const headers = { Accept: 'application/json' };
  let body;
  const fields = reason ? { reason } : {};
  if (credentials.bearerToken) {
    headers.Authorization = 'Bearer ' + credentials.bearerToken;
    if (reason) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(fields);
    }
  } else {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify({ username: credentials.username, password: credentials.password, ...fields });
  }
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), timeoutMs);
  const onAbort = () => timeout.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  let res;
  let text;
  try {
    res = await fetchImpl(endpoint, {
      method: 'POST',
      headers,
      body,
      signal: timeout.signal,
      // The token is the credential; cookies are not needed and would make
      // a cross-origin auth service need credentialed CORS.
      credentials: 'omit',
      cache: 'no-store',
    });
    text = await res.text();
  } catch (e) {
    if (signal?.aborted) throw new AuthError('wsdirect auth: aborted', { cause: e, code: 'aborted' });
    const why = timeout.signal.aborted ? `no answer within ${timeoutMs} ms` : String(e?.message ?? e);
    throw new AuthError(`wsdirect auth: ${why}`, { cause: e, code: 'network' });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
  }
  let data = null;
  try {
    data = JSON.parse(text);
  } catch {
    // A proxy's HTML error page: report the status line instead.
  }
  if (res.status !== 200) {
    const code = (data && typeof data.error === 'string' && data.error) || '';
    const msg = (data && typeof data.message === 'string' && data.message) || `HTTP ${res.status} ${res.statusText}`.trim();
    throw new AuthError(`wsdirect auth: HTTP ${res.status} ${code}: ${msg}`, {
      status: res.status,
      code,
      retryAfterMs: parseRetryAfter(res.headers.get('Retry-After')),
    });
  }
  if (!data || typeof data.url !== 'string' || typeof data.token !== 'string' || data.url === '' || data.token === '') {
    // A 200 without a usable answer is a broken deployment (or a proxy in
    // the way); treat it like a server error so the client backs off.
    throw new AuthError('wsdirect auth: answer has no url or token', { status: 502, code: 'bad_answer' });
  }
  return data;
}

const DEFAULTS = Object.freeze({
  backoff: { baseMs: 100, capMs: 30000 }, // same as the Go client's ManagedConfig
  resetAfterMs: 10000, // a connection up this long resets the backoff
  authTimeoutMs: 10000,
  connectTimeoutMs: 10000, // WebSocket handshake with the node
  maxRetryAfterMs: 300000, // ignore Retry-After floors beyond 5 min
});

/**
 * Connects through auth and keeps the connection alive until close().
 *
 * @param {object} opts
 * @param {string} opts.authURL base URL of the auth service ("" = this page's origin)
 * @param {{username: string, password: string} | {bearerToken: string} | (() => any)} opts.credentials
 *   an object, or a function (sync or async) returning one, called for every
 *   auth request so a short-lived bearer token can be refreshed
 * @param {(data: any, event: MessageEvent) => void} [opts.onMessage]
 * @param {(info: {nodeId: string, url: string}) => void} [opts.onOpen]
 * @param {(info: {code: number, reason: string, wasClean: boolean, willReconnect: boolean, delayMs: number, error?: Error}) => void} [opts.onClose]
 *   after every connection or failed attempt; error is set when the attempt failed before the socket opened
 * @param {(state: string, prev: string) => void} [opts.onStateChange]
 * @param {{baseMs?: number, capMs?: number}} [opts.backoff] full-jitter window [100 ms .. 30 s]
 * @param {boolean} [opts.tokenInProtocol] send the token as a subprotocol entry instead of ?token=
 * @param {string} [opts.binaryType] the sockets' binaryType ['blob']
 * @param {number} [opts.resetAfterMs] [10 s]
 * @param {number} [opts.authTimeoutMs] [10 s]
 * @param {number} [opts.connectTimeoutMs] [10 s]
 * @param {number} [opts.maxRetries] give up after this many failed attempts in a row [Infinity]
 * @param {typeof fetch} [opts.fetch] injected for tests
 * @param {typeof WebSocket} [opts.WebSocket] injected for tests
 * @param {() => number} [opts.random] injected for tests
 */
export function connect(opts) {
  if (opts == null || typeof opts !== 'object') throw new TypeError('wsdirect: connect needs an options object');
  if (typeof opts.credentials !== 'function') validateCredentials(opts.credentials);
  const backoff = {
    baseMs: opts.backoff?.baseMs ?? DEFAULTS.backoff.baseMs,
    capMs: opts.backoff?.capMs ?? DEFAULTS.backoff.capMs,
  };
  if (!(backoff.baseMs > 0) || !(backoff.capMs > 0)) {
    throw new TypeError('wsdirect: backoff.baseMs and backoff.capMs must be positive');
  }
  backoff.capMs = Math.max(backoff.capMs, backoff.baseMs);
  // Fail on a bad authURL now, not on the first attempt.
  connectEndpoint(opts.authURL ?? '');
  const WS = opts.WebSocket ?? globalThis.WebSocket;
  if (typeof WS !== 'function') throw new TypeError('wsdirect: no WebSocket implementation');
  return new Client(opts, backoff, WS);
}

class Client {
  constructor(opts, backoff, WS) {
    this._o = opts;
    this._backoff = backoff;
    this._WS = WS;
    this._random = opts.random ?? Math.random;
    this._state = State.AUTHENTICATING;
    this._nodeId = '';
    this._ws = null;
    this._timer = null;
    this._handshake = null;
    this._abort = null;
    this._attempt = 0; // failed attempts since the last stable connection
    // REASON_REBALANCE after a close with CloseCode.REBALANCE, until the
    // next connect succeeds; '' otherwise.
    this._reason = '';
    this._stopped = false;
    this._connects = 0;
    // Start on the next tick, so the caller can read the returned object
    // before the first callback.
    this._timer = setTimeout(() => this._cycle(), 0);
  }

  /** Current state, one of State. */
  get state() {
    return this._state;
  }

  /** The node serving the connection, or the one being connected to; "" before the first assignment. */
  get nodeId() {
    return this._nodeId;
  }

  /** How many times a socket has opened (1 after the first connect). */
  get connects() {
    return this._connects;
  }

  /**
   * Sends one message on the live connection. Returns false, and queues
   * nothing, while there is none (state other than "open").
   * @param {string | ArrayBufferLike | Blob | ArrayBufferView} data
   */
  send(data) {
    if (this._state !== State.OPEN || !this._ws || this._ws.readyState !== 1) return false;
    this._ws.send(data);
    return true;
  }

  /**
   * Stops for good: aborts a pending auth request or backoff, closes the
   * socket with 1000, and moves to "closed".
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = CloseCode.NORMAL, reason = '') {
    if (this._stopped) return;
    this._stopped = true;
    clearTimeout(this._timer);
    clearTimeout(this._handshake);
    this._abort?.abort();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(code, reason);
      } catch {
        // Already closing.
      }
    }
    this._setState(State.CLOSED);
    this._emit('onClose', { code, reason, wasClean: true, willReconnect: false, delayMs: 0 });
  }

  _setState(s) {
    if (s === this._state) return;
    const prev = this._state;
    this._state = s;
    this._emit('onStateChange', s, prev);
  }

  _emit(name, ...args) {
    const f = this._o[name];
    if (typeof f !== 'function') return;
    try {
      f(...args);
    } catch (e) {
      // A throwing callback must not wedge the reconnect loop.
      setTimeout(() => {
        throw e;
      }, 0);
    }
  }

  async _cycle() {
    if (this._stopped) return;
    this._setState(State.AUTHENTICATING);
    const abort = new AbortController();
    this._abort = abort;
    let assignment;
    try {
      const creds = typeof this._o.credentials === 'function' ? await this._o.credentials() : this._o.credentials;
      assignment = await authorize(this._o.authURL ?? '', creds, {
        fetch: this._o.fetch,
        signal: abort.signal,
        timeoutMs: this._o.authTimeoutMs ?? DEFAULTS.authTimeoutMs,
        reason: this._reason,
      });
    } catch (e) {
      if (this._stopped) return;
      const err = e instanceof Error ? e : new Error(String(e));
      const retry = err instanceof AuthError && err.temporary;
      this._failed({ code: 0, reason: err.message, wasClean: false, error: err }, retry, err.retryAfterMs ?? 0);
      return;
    } finally {
      this._abort = null;
    }
    if (this._stopped) return;
    this._open(assignment);
  }

  _open(assignment) {
    this._nodeId = typeof assignment.node_id === 'string' ? assignment.node_id : '';
    this._setState(State.CONNECTING);
    let ws;
    try {
      const p = nodeSocketParams(assignment, !!this._o.tokenInProtocol);
      ws = new this._WS(p.url, p.protocols);
    } catch (e) {
      // A bad URL scheme, or a ws:// node from an https:// page (mixed
      // content): retrying cannot fix either.
      const err = new Error(`wsdirect: cannot open a WebSocket to node ${this._nodeId}: ${e?.message ?? e}`, { cause: e });
      this._failed({ code: 0, reason: err.message, wasClean: false, error: err }, false, 0);
      return;
    }
    if (this._o.binaryType) ws.binaryType = this._o.binaryType;
    this._ws = ws;
    let openedAt = 0;
    const handshake = (this._handshake = setTimeout(() => {
      // A node that neither answers nor refuses: give up on it. close()
      // fires onclose with 1006 in browsers, which goes back to auth.
      if (!openedAt) ws.close();
    }, this._o.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs));
    ws.onopen = () => {
      clearTimeout(handshake);
      openedAt = Date.now();
      this._reason = '';
      this._connects++;
      this._setState(State.OPEN);
      this._emit('onOpen', { nodeId: this._nodeId, url: assignment.url });
    };
    ws.onmessage = (ev) => this._emit('onMessage', ev.data, ev);
    ws.onerror = () => {
      // Always followed by onclose, which decides; browsers hide the cause.
    };
    ws.onclose = (ev) => {
      clearTimeout(handshake);
      if (this._ws !== ws) return;
      this._ws = null;
      if (this._stopped) return;
      if (openedAt && Date.now() - openedAt >= (this._o.resetAfterMs ?? DEFAULTS.resetAfterMs)) {
        this._attempt = 0;
      }
      // A refused upgrade (401 expired token, 503 full or draining) shows as
      // 1006 before open: browsers hide the status, and going back to auth is
      // right for all of them.
      const code = ev.code || CloseCode.ABNORMAL;
      // Moved by a rebalance: like a drain, and the next connect requests
      // say so. A failed attempt keeps the reason.
      if (code === CloseCode.REBALANCE) this._reason = REASON_REBALANCE;
      this._failed({ code, reason: ev.reason || '', wasClean: !!ev.wasClean }, shouldReconnect(code), 0);
    };
  }

  // _failed reports an ended connection or failed attempt and either waits
  // and goes back to auth, or stops.
  _failed(info, retry, floorMs) {
    const max = this._o.maxRetries ?? Infinity;
    if (retry && this._attempt >= max) retry = false;
    if (!retry) {
      this._stopped = true;
      this._setState(State.CLOSED);
      this._emit('onClose', { ...info, willReconnect: false, delayMs: 0 });
      return;
    }
    const floor = Math.min(floorMs, this._o.maxRetryAfterMs ?? DEFAULTS.maxRetryAfterMs);
    const delayMs = backoffDelay(this._attempt, this._backoff, floor, this._random);
    this._attempt++;
    this._emit('onClose', { ...info, willReconnect: true, delayMs });
    if (this._stopped) return; // the callback called close()
    this._setState(State.WAITING);
    this._timer = setTimeout(() => this._cycle(), delayMs);
  }
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
}
