// The run timeline: for the run that created the fleet, one lane per host and one bar per
// action (as /api/v1/runs/{id} lists them), each in its host's lane with its kind and outcome;
// then a run with a failed start (a 400 injected in hostsim: not retried) shows the failure and
// its message, and the Events view filtered to errors lists it.

import {
  api, eventually, expectNoProblems, log, navigate, open, scenario, screenshot, sim, waitForView, WAIT_MS,
} from './lib.mjs';

const OUTCOMES = ['succeeded', 'failed', 'abandoned', 'running'];

async function openRun(page, id) {
  await page.click(`table#runs tbody tr[data-run="${id}"] a`);
  await page.waitForSelector('main#view[data-ready="true"] #timeline', { state: 'attached', timeout: WAIT_MS });
  const path = new globalThis.URL(page.url()).pathname;
  if (path !== `/runs/${id}`) throw new Error(`the run's link went to ${path}`);
}

// The bars and lanes against the run's actions.
async function checkTimeline(page, run) {
  const bars = await page.$$eval('#timeline .bar[data-vm]', (elements) => elements.map((bar) => {
    const box = bar.getBoundingClientRect();
    return {
      vm: bar.dataset.vm, kind: bar.dataset.kind, outcome: bar.dataset.outcome,
      lane: bar.closest('.lane')?.dataset.host, width: box.width, title: bar.getAttribute('title') || '',
    };
  }));
  const key = (vm, kind, host) => `${vm}/${kind}@${host}`;
  const shown = bars.map((b) => key(b.vm, b.kind, b.lane)).sort();
  const expected = run.actions.map((a) => key(a.vm, a.kind, a.host)).sort();
  if (JSON.stringify(shown) !== JSON.stringify(expected)) {
    throw new Error(`run ${run.id}: bars ${JSON.stringify(shown)}, actions ${JSON.stringify(expected)}`);
  }
  const lanes = await page.$$eval('#timeline .lane[data-host]', (ls) => ls.map((l) => l.dataset.host));
  const hosts = [...new Set(run.actions.map((a) => a.host))].sort();
  if (JSON.stringify([...lanes].sort()) !== JSON.stringify(hosts)) {
    throw new Error(`run ${run.id}: lanes ${JSON.stringify(lanes)}, hosts ${JSON.stringify(hosts)}`);
  }
  for (const bar of bars) {
    if (!OUTCOMES.includes(bar.outcome)) throw new Error(`bar ${bar.vm}: data-outcome ${bar.outcome}`);
    if (!(bar.width > 0)) throw new Error(`bar ${bar.vm} has no width`);
  }
  for (const action of run.actions.filter((a) => OUTCOMES.includes(a.state))) {
    const bar = bars.find((b) => b.vm === action.vm && b.kind === action.kind && b.outcome === action.state);
    if (!bar) throw new Error(`run ${run.id}: no ${action.state} bar for ${action.vm} ${action.kind}`);
  }
  return bars;
}

await scenario('timeline', async ({ newPage }) => {
  const runs = (await api('/api/v1/runs?limit=1000')).runs;
  const creation = [...runs].reverse().find((r) => r.planned > 0);
  if (!creation) throw new Error(`no run with actions: ${JSON.stringify(runs.slice(0, 5))}`);
  const run = await api(`/api/v1/runs/${creation.id}`);
  const page = await newPage();
  await open(page, `/runs`, 'runs');
  await page.waitForSelector(`table#runs tbody tr[data-run="${creation.id}"]`, { state: 'attached' }).catch(async () => {
    await open(page, `/runs?limit=1000`, 'runs');  // the first run may be past the first page
  });
  await openRun(page, creation.id);
  const bars = await checkTimeline(page, run);
  log(`run ${run.id}: ${bars.length} bars for ${run.actions.length} actions`);
  await screenshot(page, 'run');

  // A failed action: the next start of a VM on its host fails once.
  const vm = (await api('/api/v1/vms?managed=true')).vms.find((v) => v.name.startsWith('web-'));
  const message = 'injected start failure for the timeline test';
  await sim('POST', '/_sim/faults', { endpoint: 'start', count: 1, status: 400, message, host: vm.host });
  await sim('PATCH', `/_sim/hosts/${vm.host}/vms/${vm.name}`, { state: 'stopped' });
  log(`stopped ${vm.name} on ${vm.host}; its next start fails once`);
  const failed = await eventually('a run with a failed action', async () => {
    const latest = (await api('/api/v1/runs?limit=50')).runs.find((r) => r.failed > 0);
    return latest && latest.finished_at ? latest : null;
  }, { timeout: 60000 });
  const failedRun = await api(`/api/v1/runs/${failed.id}`);
  await page.goto(new globalThis.URL('/runs', page.url()).href);
  await waitForView(page, 'runs');
  await page.waitForSelector(`table#runs tbody tr[data-run="${failed.id}"]`, { state: 'attached' });
  await openRun(page, failed.id);
  const failedBars = await checkTimeline(page, failedRun);
  const failedBar = failedBars.find((b) => b.outcome === 'failed' && b.vm === vm.name);
  if (!failedBar) throw new Error(`no failed bar for ${vm.name}: ${JSON.stringify(failedBars)}`);
  const failures = await page.$$eval('#run-failures li', (lis) => lis.map((li) => li.textContent));
  if (!failures.some((f) => f.includes(vm.name) && f.includes(message))) {
    throw new Error(`#run-failures does not give ${vm.name}'s failure "${message}": ${JSON.stringify(failures)}`);
  }
  if (!failedBar.title.includes(message)) throw new Error(`the failed bar's title is "${failedBar.title}"`);
  log(`run ${failed.id}: the failed start of ${vm.name} with its message`);

  // The Events view has the failure as an error; its level filter keeps only errors.
  await navigate(page, 'events');
  await page.selectOption('select#event-level', 'error');
  await eventually('only errors, among them the failed start', async () => {
    const rows = await page.$$eval('table#events tbody tr.event',
                                   (trs) => trs.map((tr) => [tr.dataset.level, tr.innerText]));
    return rows.length > 0 && rows.every(([level]) => level === 'error') &&
      rows.some(([, line]) => line.includes(vm.name) && line.includes(message));
  });
  log('the Events view, filtered to errors, shows the failed start');
  expectNoProblems(page, 'the timeline');
});
