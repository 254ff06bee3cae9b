// Unit tests of wsdirect.js under node's test runner: `node --test test/`
// (client/js/jsclient_test.go runs them from `go test`). The network is
// replaced by a scripted fetch and a fake WebSocket class.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  AuthError,
  CloseCode,
  State,
  authorize,
  backoffDelay,
  backoffWindow,
  connect,
  connectEndpoint,
  nodeSocketParams,
  parseRetryAfter,
  REASON_REBALANCE,
  shouldReconnect,
} from '../wsdirect.js';

test('shouldReconnect follows the wire table', () => {
  const table = {
    1000: false, 1001: true, 1002: false, 1003: false, 1005: false, 1006: true, 1007: false,
    1008: false, 1009: false, 1010: false, 1011: true, 1012: true, 1013: true, 1014: true, 1015: false,
    3000: false, 3999: false,
    4000: true, 4001: true, 4002: true, 4003: true, 4499: true,
    4500: false, 4999: false, 5000: false, 0: false,
  };
  for (const [code, want] of Object.entries(table)) {
    assert.equal(shouldReconnect(Number(code)), want, `code ${code}`);
  }
  assert.equal(shouldReconnect(CloseCode.DRAINING), true);
  assert.equal(shouldReconnect(CloseCode.POLICY), false);
});

test('backoff window doubles up to the cap', () => {
  const b = { baseMs: 100, capMs: 1000 };
  assert.deepEqual([0, 1, 2, 3, 4, 50, 5000].map((a) => backoffWindow(a, b)), [100, 200, 400, 800, 1000, 1000, 1000]);
  assert.equal(backoffWindow(3, { baseMs: 0, capMs: 1000 }), 0);
});

test('backoff delay is full jitter with a Retry-After floor', () => {
  const b = { baseMs: 100, capMs: 1000 };
  assert.equal(backoffDelay(2, b, 0, () => 0), 0);
  assert.equal(backoffDelay(2, b, 0, () => 0.5), 200);
  assert.equal(backoffDelay(2, b, 0, () => 0.999999), 399);
  assert.equal(backoffDelay(2, b, 1500, () => 0.5), 1500, 'floor wins');
  assert.equal(backoffDelay(20, b, 0, () => 0.5), 500, 'capped');
  for (let i = 0; i < 1000; i++) {
    const d = backoffDelay(3, b);
    assert.ok(d >= 0 && d < 800, `delay ${d} outside [0, 800)`);
  }
});

test('parseRetryAfter reads seconds and dates, ignores garbage', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('3', now), 3000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now), 0, 'past date');
  assert.equal(parseRetryAfter('-4', now), 0);
  assert.equal(parseRetryAfter('soon', now), 0);
  assert.equal(parseRetryAfter(null, now), 0);
});

test('connectEndpoint resolves against the auth base URL', () => {
  assert.equal(connectEndpoint('http://127.0.0.2:8080'), 'http://127.0.0.2:8080/v1/connect');
  assert.equal(connectEndpoint('https://auth.example.com/'), 'https://auth.example.com/v1/connect');
  assert.equal(connectEndpoint('https://example.com/auth/?x=1'), 'https://example.com/auth/v1/connect');
  assert.equal(connectEndpoint('', 'http://127.0.0.1:9000/demo/'), 'http://127.0.0.1:9000/v1/connect');
  assert.throws(() => connectEndpoint('ftp://example.com'), /scheme must be http or https/);
  assert.throws(() => connectEndpoint('not a url'), /is not a URL/);
});

test('nodeSocketParams puts the token in the query or the protocol list', () => {
  const a = { url: 'ws://127.0.0.11:4000/ws', token: 'a.b+c/d' };
  assert.deepEqual(nodeSocketParams(a), { url: 'ws://127.0.0.11:4000/ws?token=a.b%2Bc%2Fd', protocols: ['wsdirect'] });
  assert.deepEqual(nodeSocketParams(a, true), {
    url: 'ws://127.0.0.11:4000/ws',
    protocols: ['wsdirect', 'wsdirect.token.a.b+c/d'],
  });
  assert.throws(() => nodeSocketParams({ url: 'http://x/ws', token: 't' }), /not ws: or wss:/);
});

// scriptedFetch answers each call with the next entry of answers: a
// {status, body, headers} object, or an Error to throw. It records calls.
function scriptedFetch(answers) {
  const calls = [];
  const f = async (url, init) => {
    calls.push({ url, init });
    const a = answers.shift();
    if (a === undefined) throw new Error('unexpected fetch');
    if (a instanceof Error) throw a;
    const headers = new Map(Object.entries(a.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    return {
      status: a.status,
      statusText: a.statusText ?? '',
      headers: { get: (k) => headers.get(k.toLowerCase()) ?? null },
      text: async () => (typeof a.body === 'string' ? a.body : JSON.stringify(a.body)),
    };
  };
  f.calls = calls;
  return f;
}

const assignment = (n) => ({
  status: 200,
  body: { url: `ws://127.0.0.1${n}:4000/ws`, token: `tok-${n}`, node_id: `node-${n}`, expires_at: '2026-01-01T00:00:30Z' },
});

test('authorize sends credentials and returns the assignment', async () => {
  const f = scriptedFetch([assignment(1)]);
  const got = await authorize('http://auth.test', { username: 'u', password: 'p' }, { fetch: f });
  assert.equal(got.node_id, 'node-1');
  assert.equal(f.calls[0].url, 'http://auth.test/v1/connect');
  assert.equal(f.calls[0].init.method, 'POST');
  assert.deepEqual(JSON.parse(f.calls[0].init.body), { username: 'u', password: 'p' });

  const g = scriptedFetch([assignment(2)]);
  await authorize('http://auth.test', { bearerToken: 'jwt' }, { fetch: g });
  assert.equal(g.calls[0].init.headers.Authorization, 'Bearer jwt');
  assert.equal(g.calls[0].init.body, undefined);
});

test('authorize maps failures to AuthError', async () => {
  const f = scriptedFetch([
    { status: 401, body: { error: 'invalid_credentials', message: 'invalid credentials' } },
    { status: 503, body: { error: 'no_capacity' }, headers: { 'Retry-After': '2' } },
    { status: 502, body: '<html>bad gateway</html>', statusText: 'Bad Gateway' },
    new TypeError('Failed to fetch'),
    { status: 200, body: { url: '', token: '' } },
  ]);
  const creds = { username: 'u', password: 'p' };
  const e1 = await authorize('http://a', creds, { fetch: f }).catch((e) => e);
  assert.ok(e1 instanceof AuthError);
  assert.equal(e1.status, 401);
  assert.equal(e1.code, 'invalid_credentials');
  assert.equal(e1.temporary, false);
  const e2 = await authorize('http://a', creds, { fetch: f }).catch((e) => e);
  assert.equal(e2.status, 503);
  assert.equal(e2.retryAfterMs, 2000);
  assert.equal(e2.temporary, true);
  const e3 = await authorize('http://a', creds, { fetch: f }).catch((e) => e);
  assert.equal(e3.status, 502);
  assert.match(e3.message, /Bad Gateway/);
  const e4 = await authorize('http://a', creds, { fetch: f }).catch((e) => e);
  assert.equal(e4.status, 0);
  assert.equal(e4.temporary, true);
  const e5 = await authorize('http://a', creds, { fetch: f }).catch((e) => e);
  assert.equal(e5.code, 'bad_answer');
  await assert.rejects(authorize('http://a', { username: 'u' }, { fetch: f }), /credentials must be/);
});

test('authorize times out a silent auth service', async () => {
  const hang = (url, init) =>
    new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(new Error('aborted'))));
  const e = await authorize('http://a', { username: 'u', password: 'p' }, { fetch: hang, timeoutMs: 20 }).catch((x) => x);
  assert.ok(e instanceof AuthError);
  assert.match(e.message, /no answer within 20 ms/);
  assert.equal(e.temporary, true);
});

// FakeWebSocket records every instance; tests drive it with open(),
// message() and drop().
class FakeWebSocket {
  static all = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeWebSocket.all.push(this);
  }
  send(d) {
    if (this.readyState !== 1) throw new Error('not open');
    this.sent.push(d);
  }
  close(code = 1005, reason = '') {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  message(data) {
    this.onmessage?.({ data });
  }
  drop(code, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
}

// recorder returns connect callbacks that log events, and a waitFor that
// resolves once an event matching pred has been seen.
function recorder() {
  const events = [];
  const waiters = [];
  const push = (e) => {
    events.push(e);
    for (const w of [...waiters]) {
      if (w.pred(e)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(e);
      }
    }
  };
  return {
    events,
    callbacks: {
      onStateChange: (s) => push({ type: 'state', state: s }),
      onOpen: (i) => push({ type: 'open', ...i }),
      onClose: (i) => push({ type: 'close', ...i }),
      onMessage: (d) => push({ type: 'message', data: d }),
    },
    waitFor(pred, ms = 2000) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        waiters.push(w);
        setTimeout(() => reject(new Error(`timed out; events: ${JSON.stringify(events)}`)), ms).unref();
      });
    },
  };
}

const sockets = () => FakeWebSocket.all;
const lastSocket = () => FakeWebSocket.all[FakeWebSocket.all.length - 1];
const until = async (cond, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition never held');
    await new Promise((r) => setTimeout(r, 2));
  }
};

test('connect: echo, then a lost node sends it back to auth for a fresh token', async () => {
  FakeWebSocket.all = [];
  const f = scriptedFetch([assignment(1), { status: 503, body: { error: 'no_capacity' } }, assignment(2)]);
  const r = recorder();
  const c = connect({
    authURL: 'http://auth.test',
    credentials: { username: 'u', password: 'p' },
    fetch: f,
    WebSocket: FakeWebSocket,
    random: () => 0,
    backoff: { baseMs: 5, capMs: 50 },
    ...r.callbacks,
  });
  assert.equal(c.send('early'), false, 'send before open');
  await until(() => sockets().length === 1);
  const ws1 = lastSocket();
  assert.equal(ws1.url, 'ws://127.0.0.11:4000/ws?token=tok-1');
  assert.deepEqual(ws1.protocols, ['wsdirect']);
  assert.equal(c.state, State.CONNECTING);
  ws1.open();
  assert.equal(c.state, State.OPEN);
  assert.equal(c.nodeId, 'node-1');
  assert.equal(c.send('hi'), true);
  assert.deepEqual(ws1.sent, ['hi']);
  ws1.message('hi');
  await r.waitFor((e) => e.type === 'message' && e.data === 'hi');

  ws1.drop(1006);
  const lost = await r.waitFor((e) => e.type === 'close' && e.code === 1006);
  assert.equal(lost.willReconnect, true);
  // 503 from auth: a second failure, then a third auth call succeeds.
  await r.waitFor((e) => e.type === 'close' && e.error instanceof AuthError && e.error.status === 503 && e.willReconnect);
  await until(() => sockets().length === 2);
  const ws2 = lastSocket();
  assert.equal(ws2.url, 'ws://127.0.0.12:4000/ws?token=tok-2', 'new node and fresh token, never the old ones');
  ws2.open();
  assert.equal(c.nodeId, 'node-2');
  assert.equal(c.connects, 2);
  assert.equal(f.calls.length, 3);
  c.close();
  assert.equal(c.state, State.CLOSED);
  assert.deepEqual(ws2.closedWith, { code: 1000, reason: '' });
});

test('connect: a do-not-reconnect close code stops the client', async () => {
  for (const code of [1000, 1008, 1009, CloseCode.POLICY, 4999]) {
    FakeWebSocket.all = [];
    const f = scriptedFetch([assignment(1)]);
    const r = recorder();
    const c = connect({
      authURL: 'http://auth.test',
      credentials: { username: 'u', password: 'p' },
      fetch: f,
      WebSocket: FakeWebSocket,
      random: () => 0,
      ...r.callbacks,
    });
    await until(() => sockets().length === 1);
    lastSocket().open();
    lastSocket().drop(code, 'bye');
    const e = await r.waitFor((x) => x.type === 'close');
    assert.equal(e.willReconnect, false, `code ${code}`);
    assert.equal(c.state, State.CLOSED);
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(f.calls.length, 1, `code ${code}: no second auth call`);
  }
});

test('connect: draining and shutdown codes reconnect through auth', async () => {
  FakeWebSocket.all = [];
  const f = scriptedFetch([assignment(1), assignment(2), assignment(3)]);
  const r = recorder();
  const c = connect({
    authURL: 'http://auth.test',
    credentials: { username: 'u', password: 'p' },
    fetch: f,
    WebSocket: FakeWebSocket,
    random: () => 0,
    tokenInProtocol: true,
    ...r.callbacks,
  });
  await until(() => sockets().length === 1);
  assert.deepEqual(lastSocket().protocols, ['wsdirect', 'wsdirect.token.tok-1']);
  assert.equal(lastSocket().url, 'ws://127.0.0.11:4000/ws');
  lastSocket().open();
  lastSocket().drop(CloseCode.DRAINING, 'draining');
  await until(() => sockets().length === 2);
  lastSocket().open();
  lastSocket().drop(CloseCode.SHUTDOWN);
  await until(() => sockets().length === 3);
  assert.equal(c.nodeId, 'node-3');
  c.close();
});

test('connect: a rebalance close reconnects through auth and says so until connected', async () => {
  FakeWebSocket.all = [];
  const f = scriptedFetch([assignment(1), assignment(2), assignment(3), assignment(4)]);
  const r = recorder();
  const c = connect({
    authURL: 'http://auth.test',
    credentials: { username: 'u', password: 'p' },
    fetch: f,
    WebSocket: FakeWebSocket,
    random: () => 0,
    ...r.callbacks,
  });
  await until(() => sockets().length === 1);
  lastSocket().open();
  lastSocket().drop(CloseCode.REBALANCE, 'rebalance');
  const e = await r.waitFor((x) => x.type === 'close' && x.code === CloseCode.REBALANCE);
  assert.equal(e.willReconnect, true);
  // The second node refuses the upgrade (1006 before open): the next
  // request still says rebalance.
  await until(() => sockets().length === 2);
  lastSocket().drop(1006);
  await until(() => sockets().length === 3);
  lastSocket().open();
  lastSocket().drop(CloseCode.DRAINING);
  await until(() => sockets().length === 4);
  const reasons = f.calls.map((x) => JSON.parse(x.init.body).reason ?? '');
  assert.deepEqual(reasons, ['', REASON_REBALANCE, REASON_REBALANCE, '']);
  assert.deepEqual(JSON.parse(f.calls[1].init.body), { username: 'u', password: 'p', reason: 'rebalance' });
  c.close();

  // With a bearer token the reason travels alone in the body.
  const g = scriptedFetch([assignment(5)]);
  await authorize('http://auth.test', { bearerToken: 'jwt' }, { fetch: g, reason: REASON_REBALANCE });
  assert.equal(g.calls[0].init.headers.Authorization, 'Bearer jwt');
  assert.deepEqual(JSON.parse(g.calls[0].init.body), { reason: 'rebalance' });
});

test('connect: 401 from auth stops; bad options throw', async () => {
  FakeWebSocket.all = [];
  const f = scriptedFetch([{ status: 401, body: { error: 'invalid_credentials' } }]);
  const r = recorder();
  const c = connect({
    authURL: 'http://auth.test',
    credentials: { username: 'u', password: 'wrong' },
    fetch: f,
    WebSocket: FakeWebSocket,
    ...r.callbacks,
  });
  const e = await r.waitFor((x) => x.type === 'close');
  assert.equal(e.willReconnect, false);
  assert.equal(e.error.status, 401);
  assert.equal(c.state, State.CLOSED);
  assert.equal(sockets().length, 0);

  assert.throws(() => connect({ authURL: 'http://a', credentials: {}, WebSocket: FakeWebSocket }), /credentials must be/);
  assert.throws(() => connect({ authURL: 'gopher://a', credentials: { bearerToken: 'x' }, WebSocket: FakeWebSocket }), /scheme/);
  assert.throws(
    () => connect({ authURL: 'http://a', credentials: { bearerToken: 'x' }, WebSocket: FakeWebSocket, backoff: { baseMs: -1 } }),
    /backoff/,
  );
});

test('connect: Retry-After is a floor, and close() cancels the wait', async () => {
  FakeWebSocket.all = [];
  const f = scriptedFetch([{ status: 429, body: { error: 'rate_limited' }, headers: { 'Retry-After': '7' } }]);
  const r = recorder();
  const c = connect({
    authURL: 'http://auth.test',
    credentials: () => ({ bearerToken: 'fresh' }),
    fetch: f,
    WebSocket: FakeWebSocket,
    random: () => 0.5,
    ...r.callbacks,
  });
  const e = await r.waitFor((x) => x.type === 'close');
  assert.equal(e.willReconnect, true);
  assert.equal(e.delayMs, 7000);
  assert.equal(c.state, State.WAITING);
  c.close();
  assert.equal(c.state, State.CLOSED);
  assert.equal(f.calls.length, 1);
});

test('connect: maxRetries bounds a streak of failures', async () => {
  FakeWebSocket.all = [];
  const f = scriptedFetch([new TypeError('down'), new TypeError('down'), new TypeError('down')]);
  const r = recorder();
  const c = connect({
    authURL: 'http://auth.test',
    credentials: { username: 'u', password: 'p' },
    fetch: f,
    WebSocket: FakeWebSocket,
    random: () => 0,
    maxRetries: 2,
    ...r.callbacks,
  });
  const e = await r.waitFor((x) => x.type === 'close' && !x.willReconnect);
  assert.equal(e.error.status, 0);
  assert.equal(f.calls.length, 3);
  assert.equal(c.state, State.CLOSED);
});

test('connect: a node that never answers the handshake is given up on', async () => {
  FakeWebSocket.all = [];
  const f = scriptedFetch([assignment(1), assignment(2)]);
  const r = recorder();
  const c = connect({
    authURL: 'http://auth.test',
    credentials: { username: 'u', password: 'p' },
    fetch: f,
    WebSocket: FakeWebSocket,
    random: () => 0,
    connectTimeoutMs: 20,
    ...r.callbacks,
  });
  await until(() => sockets().length === 1);
  const ws1 = lastSocket();
  await until(() => ws1.closedWith !== null);
  ws1.drop(1006); // what a browser reports after close() on a connecting socket
  await until(() => sockets().length === 2);
  assert.equal(c.nodeId, 'node-2');
  c.close();
});

test('connect: credentials() runs per attempt, and close() inside onClose stops the loop', async () => {
  FakeWebSocket.all = [];
  const f = scriptedFetch([assignment(1), assignment(2)]);
  let calls = 0;
  let closes = 0;
  let c;
  c = connect({
    authURL: 'http://auth.test',
    credentials: async () => ({ bearerToken: `jwt-${++calls}` }),
    fetch: f,
    WebSocket: FakeWebSocket,
    random: () => 0,
    onClose: (info) => {
      closes++;
      if (info.willReconnect && closes === 2) c.close();
    },
  });
  await until(() => sockets().length === 1);
  lastSocket().open();
  lastSocket().drop(1006); // first onClose: reconnect
  await until(() => sockets().length === 2);
  assert.equal(f.calls[1].init.headers.Authorization, 'Bearer jwt-2', 'fresh credentials for the second attempt');
  lastSocket().open();
  lastSocket().drop(1012); // second onClose: the callback closes the client
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.state, State.CLOSED);
  assert.equal(f.calls.length, 2, 'no third auth request after close()');
  assert.equal(calls, 2);
});
