// k6 load test of the whole wsdirect flow, as a real client does it:
//   1. POST /v1/connect to the auth service with username and password;
//   2. open the WebSocket straight to the node it assigned, presenting the
//      single-use token (?token= or a "wsdirect.token.<jwt>" subprotocol);
//   3. send MESSAGES messages, one every MESSAGE_INTERVAL_MS, and check that
//      each comes back unchanged (the node's built-in echo, or an echoing
//      upstream app);
//   4. close, and start over with a fresh token (tokens are single use).
//
//   k6 run -e AUTH_URL=https://auth.example.com -e USERNAME=alice -e PASSWORD=... \
//          -e VUS=50 -e DURATION=1m examples/k6/wsdirect.js
//
// Over TLS (https:// auth, wss:// nodes) with a private or test CA, give k6
// the CA file or bundle the way every Go program takes one:
//
//   SSL_CERT_FILE=ca.pem k6 run -e AUTH_URL=https://127.0.0.1:8443 ...
//
// See README.md next to this file for every variable and the metrics.
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';
import { WebSocket } from 'k6/websockets';

function envInt(name, def) {
  const v = __ENV[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${v}: want a non-negative integer`);
  return n;
}

const AUTH_URL = (__ENV.AUTH_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const USERNAME = __ENV.USERNAME || 'tester';
const PASSWORD = __ENV.PASSWORD || '';
const BEARER_TOKEN = __ENV.BEARER_TOKEN || ''; // for the JWKS and callback backends
const TOKEN_IN = __ENV.TOKEN_IN || 'query'; // "query" or "protocol"
const MESSAGES = envInt('MESSAGES', 10);
const MESSAGE_INTERVAL_MS = envInt('MESSAGE_INTERVAL_MS', 100);
const SESSION_TIMEOUT_MS = envInt('SESSION_TIMEOUT_MS', 10000 + MESSAGES * (MESSAGE_INTERVAL_MS + 1000));
const ECHO_P99_MS = envInt('ECHO_P99_MS', 1000); // threshold on the echo round trip

if (!/^https?:\/\/[^/]+/.test(AUTH_URL)) throw new Error(`AUTH_URL=${AUTH_URL}: want http(s)://host[:port]`);
if (TOKEN_IN !== 'query' && TOKEN_IN !== 'protocol') throw new Error(`TOKEN_IN=${TOKEN_IN}: want query or protocol`);
if (!BEARER_TOKEN && !PASSWORD) throw new Error('set PASSWORD (with USERNAME) or BEARER_TOKEN');
if (MESSAGES < 1) throw new Error('MESSAGES must be at least 1');

export const options = {
  scenarios: {
    sessions: {
      executor: 'constant-vus',
      vus: envInt('VUS', 10),
      duration: __ENV.DURATION || '30s',
      // Let sessions in flight finish their messages when the duration
      // ends. gracefulStop belongs to a scenario: k6 ignores it, with a
      // warning, among the top-level options.
      gracefulStop: '30s',
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    wsdirect_sessions_ok: ['rate>0.99'],
    wsdirect_echo_rtt: [`p(99)<${ECHO_P99_MS}`],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(99)', 'max', 'count'],
};

// Custom metrics: the full-flow connect time (auth request through the
// WebSocket open), the echo round trip, how many echoes came back, and the
// share of sessions that did everything they should.
const connectTime = new Trend('wsdirect_connect_ms', true);
const echoRTT = new Trend('wsdirect_echo_rtt', true);
const echoes = new Counter('wsdirect_echoes');
const sessionsOK = new Rate('wsdirect_sessions_ok');

// Close codes after which a client goes back to auth (wire.ShouldReconnect).
function shouldReconnect(code) {
  if (code >= 4000 && code < 4500) return true;
  if (code >= 4500 && code < 5000) return false;
  return [1001, 1006, 1011, 1012, 1013, 1014].includes(code);
}

function authorize() {
  const headers = { Accept: 'application/json' };
  let body = null;
  if (BEARER_TOKEN) {
    headers.Authorization = `Bearer ${BEARER_TOKEN}`;
  } else {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify({ username: USERNAME, password: PASSWORD });
  }
  return http.post(`${AUTH_URL}/v1/connect`, body, { headers, tags: { name: 'POST /v1/connect' }, timeout: '10s' });
}

export default function () {
  const start = Date.now();
  const res = authorize();
  let answer = null;
  try {
    answer = res.status === 200 ? res.json() : null;
  } catch (e) {
    answer = null;
  }
  const authOK = check(res, {
    'auth: status 200': (r) => r.status === 200,
    'auth: answer has url, token and node_id': () =>
      answer !== null && typeof answer.url === 'string' && /^wss?:\/\//.test(answer.url) && !!answer.token && !!answer.node_id,
  });
  if (!authOK) {
    sessionsOK.add(false);
    // 503 (no node has room) and 429 carry Retry-After: honour it, as a
    // real client would, instead of hammering auth.
    const retry = Number(res.headers['Retry-After']);
    sleep(Number.isFinite(retry) && retry > 0 ? Math.min(retry, 30) : 1);
    return;
  }

  let url = answer.url;
  const protocols = ['wsdirect'];
  if (TOKEN_IN === 'protocol') {
    protocols.push(`wsdirect.token.${answer.token}`);
  } else {
    url += (url.includes('?') ? '&' : '?') + `token=${encodeURIComponent(answer.token)}`;
  }
  // Tag by node, not by URL: the URL carries the token.
  const tags = { node: answer.node_id, name: 'node /ws' };
  const ws = new WebSocket(url, protocols, { tags });

  let sent = 0;
  let got = 0;
  let pending = null; // {payload, at}
  let finished = false;
  let timer = null;
  let watchdog = null;

  const finish = (ok, why) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    clearTimeout(watchdog);
    sessionsOK.add(ok);
    if (!ok) console.warn(`VU ${__VU} iteration ${__ITER} on ${answer.node_id}: ${why}`);
    if (ws.readyState === 0 || ws.readyState === 1) ws.close();
  };

  const sendNext = () => {
    if (finished || ws.readyState !== 1) return;
    const payload = `vu=${__VU} it=${__ITER} n=${sent} t=${Date.now()}`;
    pending = { payload, at: Date.now() };
    sent++;
    ws.send(payload);
  };

  watchdog = setTimeout(() => {
    check(null, { 'ws: session finished in time': () => false });
    finish(false, `no end after ${SESSION_TIMEOUT_MS} ms (${got}/${MESSAGES} echoes)`);
  }, SESSION_TIMEOUT_MS);

  ws.addEventListener('open', () => {
    connectTime.add(Date.now() - start, { node: answer.node_id });
    check(ws, { 'ws: subprotocol is wsdirect': (w) => w.protocol === 'wsdirect' });
    sendNext();
  });

  ws.addEventListener('message', (ev) => {
    if (finished) return;
    const expected = pending;
    pending = null;
    const ok = check(ev.data, { 'ws: echo matches': (d) => expected !== null && d === expected.payload });
    if (!ok) {
      finish(false, `unexpected message ${JSON.stringify(String(ev.data).slice(0, 100))}`);
      return;
    }
    echoRTT.add(Date.now() - expected.at, { node: answer.node_id });
    echoes.add(1);
    got++;
    if (got >= MESSAGES) {
      finish(true, '');
      return;
    }
    timer = setTimeout(sendNext, MESSAGE_INTERVAL_MS);
  });

  ws.addEventListener('error', (e) => {
    if (finished) {
      // After this script's own close, k6 still answers a ping the node
      // sent just before it, finds the close already sent and reports
      // "websocket: close sent" as an error. The session is over and
      // counted; anything else here is the closing handshake failing.
      if (!String(e.error).includes('close sent')) {
        check(null, { 'ws: clean close': () => false });
        console.warn(`VU ${__VU} iteration ${__ITER} on ${answer.node_id}: error after close: ${e.error}`);
      }
      return;
    }
    check(null, { 'ws: no error': () => false });
    finish(false, `error: ${e.error}`);
  });

  ws.addEventListener('close', (ev) => {
    if (finished) return;
    // The server ended the session early. A real client would go back to
    // auth (shouldReconnect) or stop; either way this session failed.
    const code = ev && ev.code;
    check(null, { 'ws: not closed by the server': () => false });
    finish(false, `closed by server with ${code} (${shouldReconnect(code) ? 'reconnect' : 'stop'}) after ${got} echoes`);
  });
}
