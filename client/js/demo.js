// The demo page's logic: wires the form to wsdirect.connect. The page also
// publishes window.wsdirectDemo so the headless-browser test can read the
// client's state without scraping the DOM.
import { connect } from './wsdirect.js';

const $ = (id) => document.getElementById(id);
const MAX_LOG_LINES = 500;

let client = null;
const received = [];

function log(line) {
  const el = $('log');
  const ts = new Date().toISOString().slice(11, 23);
  el.textContent += `${ts} ${line}\n`;
  const lines = el.textContent.split('\n');
  if (lines.length > MAX_LOG_LINES) el.textContent = lines.slice(-MAX_LOG_LINES).join('\n');
  el.scrollTop = el.scrollHeight;
}

function render() {
  const state = client ? client.state : 'idle';
  $('state').textContent = state;
  $('state').dataset.state = state;
  $('node').textContent = (client && client.nodeId) || '–';
  $('connects').textContent = String(client ? client.connects : 0);
  $('send').disabled = state !== 'open';
  $('connect').disabled = !!client && state !== 'closed';
  $('disconnect').disabled = !client || state === 'closed';
}

$('login').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (client && client.state !== 'closed') return;
  const authURL = $('auth-url').value.trim();
  try {
    client = connect({
      authURL,
      credentials: { username: $('username').value, password: $('password').value },
      // A demo wants to see a lost node replaced quickly.
      backoff: { baseMs: 200, capMs: 5000 },
      onStateChange: (state) => {
        log(`state: ${state}`);
        render();
      },
      onOpen: ({ nodeId }) => {
        log(`connected to ${nodeId}`);
        render();
      },
      onMessage: (data) => {
        const text = typeof data === 'string' ? data : `[${data.constructor?.name ?? 'binary'}]`;
        received.push(text);
        $('last-message').textContent = text;
        log(`received: ${text}`);
      },
      onClose: ({ code, reason, willReconnect, delayMs, error }) => {
        const why = error ? error.message : `code ${code}${reason ? ' ' + reason : ''}`;
        log(willReconnect ? `lost (${why}); back to auth in ${delayMs} ms` : `closed (${why})`);
        render();
      },
    });
  } catch (e) {
    log(`error: ${e.message}`);
    client = null;
  }
  render();
});

$('disconnect').addEventListener('click', () => {
  if (client) client.close();
  render();
});

$('message-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const text = $('message').value;
  if (client && client.send(text)) {
    log(`sent: ${text}`);
  } else {
    log('not connected: message not sent');
  }
});

window.wsdirectDemo = {
  get state() {
    return client ? client.state : 'idle';
  },
  get nodeId() {
    return client ? client.nodeId : '';
  },
  get connects() {
    return client ? client.connects : 0;
  },
  received,
};
render();
log('ready');
