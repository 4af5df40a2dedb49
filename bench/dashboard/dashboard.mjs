// bench/dashboard, the browser half: in headless Chromium (tests/browser/lib.mjs), against a
// `flotilla run` observing a large fleet (dashboard_bench.cc starts it), measures
//   first render: navigation start to performance.mark('flotilla:vms-interactive') on /vms, in
//     a fresh browser context each time (cold cache, token put in sessionStorage before load);
//   live update: a VM's state changed behind Flotilla's back (hostsim's control API), and the
//     page's update that applied it: performance.mark('flotilla:update-start') (change received)
//     to the next 'flotilla:update-end' (DOM updated). The update is the one under way when the
//     VM's state cell changed (a MutationObserver), whatever other updates came before.
// Prints every repetition, the median and the max, and a JSON line for the harness.
//   FLOTILLA_URL, FLOTILLA_TOKEN   the loop's API
//   BENCH_VM, BENCH_VM_HOST_URL    the VM to flip and its host's control URL (.../_sim/hosts/H)
//   BENCH_HOSTS, BENCH_VMS         the fleet's size, for the summary
//   BENCH_REPS                     repetitions of each measurement (default 10)
//   BENCH_ACCEPT_ENCODING          if set, the page's requests send this Accept-Encoding instead
//                                  of Chromium's (gzip, deflate, br, zstd): a diagnosis of the
//                                  server's compression, not how a browser runs the page

import { env, eventually, launchBrowser, log, VIEWPORT } from '../../tests/browser/lib.mjs';

const URL = env('FLOTILLA_URL');
const TOKEN = env('FLOTILLA_TOKEN');
const VM = env('BENCH_VM');
const REPS = Number(env('BENCH_REPS', '10'));
const ENCODING = process.env.BENCH_ACCEPT_ENCODING || '';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (ms) => ms.toFixed(1);

async function freshPage(browser) {
  const context = await browser.newContext({ viewport: VIEWPORT });
  if (ENCODING) await context.setExtraHTTPHeaders({ 'Accept-Encoding': ENCODING });
  await context.addInitScript((token) => sessionStorage.setItem('flotilla.token', token), TOKEN);
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (m) => { if (m.type() === 'error') page.problems.push(m.text()); });
  page.on('pageerror', (e) => page.problems.push(String(e)));
  return { context, page };
}

async function firstRender(browser) {
  const { context, page } = await freshPage(browser);
  await page.goto(`${URL}/vms?sort=name`);
  await page.waitForFunction(() => performance.getEntriesByName('flotilla:vms-interactive').length > 0,
                             null, { timeout: 60000, polling: 50 });
  const result = await page.evaluate(() => ({
    interactive: performance.getEntriesByName('flotilla:vms-interactive')[0].startTime,
    // Where the time went: the API answers the page waited for (request start to last byte).
    fetches: performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/'))
      .map((r) => `${new URL(r.name).pathname} ${Math.round(r.startTime)}+${Math.round(r.responseEnd - r.startTime)} ms`),
    longTasks: window.__benchLongTasks || [],
    rows: document.querySelectorAll('table#vm-table tbody tr[data-vm]').length,
    count: document.querySelector('#vm-count')?.textContent.trim(),
  }));
  if (page.problems.length) log(`first render: page problems: ${page.problems.join(' | ')}`);
  await context.close();
  return result;
}

async function flip(state) {
  const response = await fetch(`${env('BENCH_VM_HOST_URL')}/vms/${VM}`, {
    method: 'PATCH', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ state }),
  });
  if (!response.ok) throw new Error(`hostsim PATCH ${VM}: ${response.status} ${await response.text()}`);
}

async function liveUpdate(page, state) {
  await page.evaluate(({ vm, expected }) => {
    window.__bench = { changedAt: null };
    const check = () => {
      const cell = document.querySelector(`table#vm-table tbody tr[data-vm="${vm}"] td[data-col="state"]`);
      if (cell && cell.textContent.includes(expected) && window.__bench.changedAt === null) {
        window.__bench.changedAt = performance.now();
      }
    };
    window.__bench.observer = new MutationObserver(check);
    window.__bench.observer.observe(document.querySelector('table#vm-table'),
                                    { subtree: true, childList: true, characterData: true, attributes: true });
  }, { vm: VM, expected: state });
  const flippedAt = Date.now();
  await flip(state);
  await page.waitForFunction(() => window.__bench.changedAt !== null, null, { timeout: 120000, polling: 50 });
  const seenAfter = Date.now() - flippedAt;
  // The update under way when the state cell changed: update-start and update-end marks paired
  // last-in first-out up to that moment (an update that starts while another is loading may end
  // at once, sharing the other's fetch); the oldest update still open then is the one that
  // brought the change (the longest reading), and it ends at the first update-end after it.
  const pair = await eventually('the update-end after the change', () => page.evaluate(() => {
    const at = window.__bench.changedAt;
    const marks = [
      ...performance.getEntriesByName('flotilla:update-start').map((m) => ({ t: m.startTime, start: true })),
      ...performance.getEntriesByName('flotilla:update-end').map((m) => ({ t: m.startTime, start: false })),
    ].sort((a, b) => a.t - b.t || (a.start ? -1 : 1));
    const open = [];
    // (performance.now() is coarse: the change and its update's end may share a timestamp.)
    for (const m of marks.filter((x) => (x.start ? x.t <= at : x.t < at))) {
      if (m.start) open.push(m.t); else open.pop();
    }
    if (!open.length) {
      return { error: `the VM table changed at ${at.toFixed(1)} ms outside any update; marks: ${
        JSON.stringify(marks.filter((m) => Math.abs(m.t - at) < 5000).map((m) => `${m.start ? 'start' : 'end'}@${m.t.toFixed(1)}`))}` };
    }
    const end = marks.find((m) => !m.start && m.t >= at);
    if (!end) return null;
    window.__bench.observer.disconnect();
    return { start: open[0], end: end.t, overlapping: open.length, updates: window.__flotilla?.updates };
  }), { timeout: 60000, interval: 50 });
  if (pair.error) throw new Error(pair.error);
  return { update: pair.end - pair.start, seenAfter, updates: pair.updates, overlapping: pair.overlapping };
}

const browser = await launchBrowser();
try {
  const hosts = Number(env('BENCH_HOSTS'));
  const vms = Number(env('BENCH_VMS'));
  log(`Chromium ${browser.version()}, ${REPS} repetitions${ENCODING ? `, Accept-Encoding: ${ENCODING}` : ''}`);

  const renders = [];
  await firstRender(browser);  // warm-up: the server's first answers, Chromium's first page
  for (let i = 0; i < REPS; ++i) {
    const r = await firstRender(browser);
    renders.push(r.interactive);
    log(`first render ${i + 1}: ${fmt(r.interactive)} ms (${r.rows} rows in the DOM, #vm-count "${r.count}"); API answers (start+duration): ${r.fetches.join(', ')}`);
  }

  const { context, page } = await freshPage(browser);
  await page.goto(`${URL}/vms?sort=name`);
  await page.waitForFunction(() => performance.getEntriesByName('flotilla:vms-interactive').length > 0,
                             null, { timeout: 120000 });
  await page.waitForSelector(`table#vm-table tbody tr[data-vm="${VM}"]`, { state: 'attached' });
  const updates = [];
  for (let i = 0; i < REPS; ++i) {
    const state = i % 2 === 0 ? 'stopped' : 'running';
    const r = await liveUpdate(page, state);
    updates.push(r.update);
    log(`update ${i + 1}: ${VM} -> ${state}: applied in ${fmt(r.update)} ms (shown ${r.seenAfter} ms after the host changed; ${r.updates} updates so far${r.overlapping > 1 ? `; ${r.overlapping} updates were under way` : ''})`);
  }
  if (page.problems.length) log(`live page problems: ${page.problems.join(' | ')}`);
  await context.close();

  const summary = {
    hosts, vms, reps: REPS,
    first_render_ms: { median: median(renders), max: Math.max(...renders), runs: renders },
    update_ms: { median: median(updates), max: Math.max(...updates), runs: updates },
  };
  console.log(`first render (navigation to flotilla:vms-interactive): median ${fmt(summary.first_render_ms.median)} ms, max ${fmt(summary.first_render_ms.max)} ms (target < 1000 ms)`);
  console.log(`live update (flotilla:update-start to update-end): median ${fmt(summary.update_ms.median)} ms, max ${fmt(summary.update_ms.max)} ms (target < 100 ms)`);
  console.log(`RESULT ${JSON.stringify(summary)}`);
} finally {
  await browser.close();
}
