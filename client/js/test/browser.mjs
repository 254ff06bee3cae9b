// Drives the demo page in headless Chromium through playwright-core, for
// internal/testing/e2e/browser_test.go:
//
//   node client/js/test/browser.mjs <pageURL> <screenshot.png> <userDataDir>
//
// Protocol with the Go test, one JSON object per line on stdout:
//   1. {"event":"connected","nodeId":...}  after login, connect and an echo;
//      the test then kills that node and writes "killed\n" to our stdin;
//   2. {"event":"done",...}                after the page reconnected through
//      auth to a different node and echoed again, with a screenshot taken;
//   or {"event":"error","message":...}     on any failure (exit code 1).
// Every wait is bounded; CHROMIUM overrides /usr/bin/chromium.
//
// With EXPECT_CERT_ERROR=1 it only loads the page and expects Chromium to
// refuse its certificate: {"event":"cert_refused","message":...} (exit 0).
// The Go test runs that with a profile that does not trust the test CA, to
// show that the trust in the main run is real.
import { mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const [pageURL, screenshotPath, userDataDir] = process.argv.slice(2);
if (!pageURL || !screenshotPath || !userDataDir) {
  console.error('usage: node browser.mjs <pageURL> <screenshot.png> <userDataDir>');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

const CONNECT_TIMEOUT_MS = 20000;
const ECHO_TIMEOUT_MS = 10000;
const KILL_TIMEOUT_MS = 30000; // the Go side answering "killed"
const RECONNECT_TIMEOUT_MS = 45000;

// The machine has no outside network: every flag that stops Chromium from
// phoning home keeps it from stalling on background connections.
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// Lines from the Go test, one at a time.
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function readLine(timeoutMs) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no instruction on stdin within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const r = await Promise.race([stdinLines.next(), timeout]);
    if (r.done) throw new Error('stdin closed');
    return r.value.trim();
  } finally {
    clearTimeout(timer);
  }
}

const demoState = (page) =>
  page.evaluate(() => ({
    state: window.wsdirectDemo.state,
    nodeId: window.wsdirectDemo.nodeId,
    connects: window.wsdirectDemo.connects,
    received: [...window.wsdirectDemo.received],
  }));

async function echo(page, text) {
  await page.fill('#message', text);
  await page.click('#send');
  await page.waitForFunction((t) => window.wsdirectDemo.received.includes(t), text, { timeout: ECHO_TIMEOUT_MS });
}

let context;
const pageErrors = [];
const consoleErrors = [];
let page;
try {
  mkdirSync(userDataDir, { recursive: true });
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ARGS,
    timeout: 60000,
    viewport: { width: 900, height: 900 },
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(CONNECT_TIMEOUT_MS);
  page.on('pageerror', (e) => pageErrors.push(String(e?.message ?? e)));
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text().replace(/token=[^&'"\s]+/g, 'token=REDACTED'));
  });

  if (process.env.EXPECT_CERT_ERROR === '1') {
    let refused = '';
    try {
      await page.goto(pageURL, { waitUntil: 'load', timeout: CONNECT_TIMEOUT_MS });
    } catch (e) {
      refused = String(e?.message ?? e);
    }
    if (!refused.includes('ERR_CERT')) throw new Error(`page loaded without a certificate error: ${refused}`);
    emit({ event: 'cert_refused', message: refused.split('\n')[0] });
    await context.close();
    process.exit(0);
  }
  const res = await page.goto(pageURL, { waitUntil: 'load', timeout: CONNECT_TIMEOUT_MS });
  if (!res || !res.ok()) throw new Error(`GET ${pageURL}: HTTP ${res?.status()}`);
  await page.waitForFunction(() => window.wsdirectDemo !== undefined);
  const version = context.browser()?.version() ?? '';

  // The form is prefilled for the test user; the auth URL is left empty, so
  // the page talks to auth on its own origin.
  const t0 = Date.now();
  await page.click('#connect');
  await page.waitForFunction(() => window.wsdirectDemo.state === 'open', null, { timeout: CONNECT_TIMEOUT_MS });
  const connectMs = Date.now() - t0;
  await echo(page, 'echo-1');
  const first = await demoState(page);
  emit({ event: 'connected', nodeId: first.nodeId, connectMs });

  const line = await readLine(KILL_TIMEOUT_MS);
  if (line !== 'killed') throw new Error(`unexpected instruction ${JSON.stringify(line)}`);
  const tKill = Date.now();
  await page.waitForFunction(
    (old) => window.wsdirectDemo.state === 'open' && window.wsdirectDemo.nodeId !== old,
    first.nodeId,
    { timeout: RECONNECT_TIMEOUT_MS },
  );
  const reconnectMs = Date.now() - tKill;
  await echo(page, 'echo-2');
  const second = await demoState(page);
  const log = await page.textContent('#log');
  await page.screenshot({ path: screenshotPath, fullPage: true });
  emit({
    event: 'done',
    browserVersion: version,
    firstNode: first.nodeId,
    secondNode: second.nodeId,
    state: second.state,
    connects: second.connects,
    received: second.received,
    stateText: await page.textContent('#state'),
    nodeText: await page.textContent('#node'),
    connectMs,
    reconnectMs,
    pageErrors,
    consoleErrors,
    log,
  });
  await context.close();
  process.exit(0);
} catch (e) {
  let log = '';
  try {
    log = page ? await page.textContent('#log', { timeout: 2000 }) : '';
    if (page) await page.screenshot({ path: screenshotPath, fullPage: true, timeout: 5000 });
  } catch {
    // The page may be gone; report what we have.
  }
  emit({ event: 'error', message: String(e?.stack ?? e), pageErrors, consoleErrors, log });
  try {
    await context?.close();
  } catch {
    // Closing a crashed browser can fail too.
  }
  process.exit(1);
}
