// Shared by the browser scenarios (tests/browser/*.mjs) and the dashboard benchmark: Debian's
// Chromium driven by playwright-core, the dashboard's DOM contract (docs/dashboard.md), the API
// and hostsim's control API, and a scenario runner that fails loudly.
//
// A scenario is started by tests/e2e/dashboard_test.cc, which starts the fleet (flotilla run
// with flotilla-hostsim and a Git repository) and passes it in the environment:
//   FLOTILLA_URL          the API server's origin, http://127.0.0.1:PORT
//   FLOTILLA_TOKEN        the bearer token
//   FLOTILLA_REPO         the fleet's Git repository (branch main)
//   FLOTILLA_SIM          flotilla-hostsim's origin (its /_sim/ control API)
//   FLOTILLA_SCREENSHOTS  where screenshots go (<build>/dashboard-screenshots)
//   FLOTILLA_DOCS_IMAGES  set (docs/images) when FLOTILLA_UPDATE_DOCS=1: screenshots go there too
// plus scenario-specific variables. Exit code 0: passed; anything else: failed, with the reason
// on stderr and a screenshot of every open page in FLOTILLA_SCREENSHOTS/failure-*.png.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const CHROMIUM = process.env.FLOTILLA_CHROMIUM || '/usr/bin/chromium';
// Chromium's own connections are refused on a closed network; these flags keep it from trying.
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
export const VIEWPORT = { width: 1280, height: 800 };
// Waits bound a failure; they never time success. The dashboard updates within 2 s of a change;
// a loaded 2-core machine running sanitizer builds gets ten times that.
// Generous: CI runs these beside other tests, with sanitizers, on 2 cores.
export const WAIT_MS = Number(process.env.FLOTILLA_BROWSER_WAIT_MS || 60000);
export const VIEWS = ['overview', 'hosts', 'vms', 'plan', 'runs', 'events'];

let chromiumModule;
async function playwright() {
  if (!chromiumModule) {
    try {
      chromiumModule = (await import('playwright-core')).chromium;
    } catch (error) {
      throw new Error(`playwright-core is not installed in tests/browser/node_modules: ` +
                      `run scripts/install-deps.sh (${error.message})`);
    }
  }
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run scripts/install-deps.sh (Debian's chromium)`);
  }
  return chromiumModule;
}

// Headless Chromium with a fresh profile (Playwright makes a new --user-data-dir per launch).
export async function launchBrowser() {
  const chromium = await playwright();
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

export function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback !== undefined) return fallback;
    throw new Error(`${name} is not set (the scenario is started by dashboard_test)`);
  }
  return value;
}

export function log(...args) {
  console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
}

// Polls `probe` (async; a truthy result ends the wait and is returned) until `timeout`; then
// throws with `what` and the last value or error seen.
export async function eventually(what, probe, { timeout = WAIT_MS, interval = 200 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > end) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${detail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

// --- the API and hostsim ---------------------------------------------------------------------

export async function apiResponse(urlPath, { token = env('FLOTILLA_TOKEN'), method = 'GET',
                                             body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  return fetch(env('FLOTILLA_URL') + urlPath, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
}

// The JSON of an authenticated API call; throws on a non-2xx answer.
export async function api(urlPath, options) {
  const response = await apiResponse(urlPath, options);
  const text = await response.text();
  if (!response.ok) throw new Error(`${urlPath}: ${response.status} ${text}`);
  return JSON.parse(text);
}

// Starts a pass now (POST /api/v1/reconcile).
export async function reconcile(reason = 'browser-test') {
  return api('/api/v1/reconcile', { method: 'POST', body: { reason } });
}

// hostsim's control API (/_sim/...).
export async function sim(method, urlPath, body) {
  const response = await fetch(env('FLOTILLA_SIM') + urlPath, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`hostsim ${method} ${urlPath}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

// Moves branch main of the fleet repository to `ref` (a branch dashboard_test prepared): the
// commit the loop fetches next.
export function pushToMain(ref) {
  const repo = env('FLOTILLA_REPO');
  execFileSync('git', ['-C', repo, 'merge', '-q', '--ff-only', ref], { stdio: 'pipe' });
  return execFileSync('git', ['-C', repo, 'rev-parse', 'HEAD']).toString().trim();
}

// --- pages -----------------------------------------------------------------------------------

// A page at 1280x800 in a fresh context that records every console error and warning, uncaught
// exception, failed request and HTTP error answer in `page.problems` (see expectNoProblems).
// `allowStatus(url, status)` lets a scenario expect some error answers (a refused token's 401).
export async function newPage(browser, { allowStatus = () => false, viewport = VIEWPORT } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error' || message.type() === 'warning') {
      // Chromium logs every error answer as "Failed to load resource: ... status of 401";
      // those a scenario expects are not problems.
      const status = /status of (\d+)/.exec(message.text());
      if (status && allowStatus(message.location().url || '', Number(status[1]))) return;
      page.problems.push(`console ${message.type()}: ${message.text()} ` +
                         `(${message.location().url || page.url()})`);
    }
  });
  page.on('pageerror', (error) => page.problems.push(`uncaught: ${error.stack || error}`));
  page.on('requestfailed', (request) => {
    const failure = request.failure()?.errorText || '';
    // A navigation aborts the page's fetches (its event stream among them): not a problem.
    if (!failure.includes('ERR_ABORTED')) {
      page.problems.push(`request failed: ${request.method()} ${request.url()}: ${failure}`);
    }
  });
  page.on('response', (response) => {
    const status = response.status();
    if (status >= 400 && !allowStatus(response.url(), status)) {
      page.problems.push(`HTTP ${status}: ${response.request().method()} ${response.url()}`);
    }
  });
  return page;
}

export function expectNoProblems(page, where) {
  if (page.problems.length) {
    throw new Error(`${where}: ${page.problems.length} problem(s):\n  ${page.problems.join('\n  ')}`);
  }
}

export function viewSelector(view) {
  return `main#view[data-view="${view}"][data-ready="true"]`;
}

export async function waitForView(page, view, timeout = WAIT_MS) {
  await page.waitForSelector(viewSelector(view), { timeout, state: 'attached' });
}

// Opens `urlPath`, logs in through the form when the page asks, and waits for `view` to render
// its data.
export async function open(page, urlPath, view) {
  await page.goto(env('FLOTILLA_URL') + urlPath);
  const loginForm = page.locator('form#login input#token');
  const asked = await eventually(`${urlPath}: the ${view} view or the login form`, async () => {
    if (await page.$(viewSelector(view))) return 'view';
    if (await loginForm.isVisible()) return 'login';
    return null;
  });
  if (asked === 'login') await submitToken(page, env('FLOTILLA_TOKEN'));
  await waitForView(page, view);
}

// Types `token` into the login form and submits it.
export async function submitToken(page, token) {
  await page.waitForSelector('form#login input#token', { timeout: WAIT_MS });
  await page.fill('form#login input#token', token);
  await page.click('form#login [type="submit"]');
}

// Clicks the navigation link of `view` (no reload) and waits for it.
export async function navigate(page, view) {
  await page.click(`nav a[data-nav="${view}"]`);
  await waitForView(page, view);
}

// Marks the document; `expectSameDocument` then proves no reload happened since.
export async function markDocument(page) {
  await page.evaluate(() => { window.__flotillaTestMark = 'kept'; });
}
export async function expectSameDocument(page, where) {
  const mark = await page.evaluate(() => window.__flotillaTestMark);
  if (mark !== 'kept') throw new Error(`${where}: the page was reloaded`);
}

// The text of the first element matching `selector` as it is rendered (innerText: what a
// person reads, with the spaces layout puts between elements), whitespace squashed.
export async function text(page, selector) {
  const element = await page.waitForSelector(selector, { state: 'attached', timeout: WAIT_MS });
  return squash(await element.innerText());
}
export function squash(value) {
  return value.replace(/\s+/g, ' ').trim();
}
export async function attributes(page, selector, name) {
  return page.$$eval(selector, (elements, n) => elements.map((e) => e.getAttribute(n)), name);
}

// Saves a screenshot of the page as dashboard-NAME.png in FLOTILLA_SCREENSHOTS, and in
// FLOTILLA_DOCS_IMAGES when set (FLOTILLA_UPDATE_DOCS=1).
export async function screenshot(page, name) {
  const file = `dashboard-${name}.png`;
  const dirs = [env('FLOTILLA_SCREENSHOTS')];
  if (process.env.FLOTILLA_DOCS_IMAGES) dirs.push(process.env.FLOTILLA_DOCS_IMAGES);
  for (const dir of dirs) {
    fs.mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: path.join(dir, file) });
  }
  log(`screenshot ${file}`);
}

// Runs a scenario: launches Chromium, calls `body({browser, pages})`, and closes everything.
// Every page made through `newPage` of the argument is shot to failure-NAME-N.png on failure.
export async function scenario(name, body) {
  const limit = Number(process.env.FLOTILLA_SCENARIO_TIMEOUT_MS || 240000);
  const timer = setTimeout(() => {
    console.error(`${name}: FAILED: still running after ${limit} ms`);
    process.exit(2);
  }, limit);
  let browser;
  const pages = [];
  try {
    browser = await launchBrowser();
    log(`${name}: Chromium ${browser.version()} against ${env('FLOTILLA_URL')}`);
    await body({
      browser,
      newPage: async (options) => {
        const page = await newPage(browser, options);
        pages.push(page);
        return page;
      },
    });
    log(`${name}: passed`);
  } catch (error) {
    process.exitCode = 1;
    console.error(`${name}: FAILED: ${error.stack || error}`);
    for (const [i, page] of pages.entries()) {
      try {
        const dir = env('FLOTILLA_SCREENSHOTS');
        fs.mkdirSync(dir, { recursive: true });
        const file = path.join(dir, `failure-${name}-${i}.png`);
        await page.screenshot({ path: file, fullPage: true });
        console.error(`${name}: page ${i} at ${page.url()} shot to ${file}`);
        if (page.problems.length) console.error(`  problems:\n  ${page.problems.join('\n  ')}`);
      } catch (shotError) {
        console.error(`${name}: no screenshot of page ${i}: ${shotError.message}`);
      }
    }
  } finally {
    clearTimeout(timer);
    if (browser) await browser.close();
  }
}
