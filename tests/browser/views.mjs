// Every view loads and shows the fleet's real names and counts, compared with the API's JSON;
// the navigation marks the active view and the back button goes back; each view is shot at
// 1280x800 (dashboard-<view>.png).

import {
  api, attributes, env, eventually, expectNoProblems, log, navigate, open, reconcile, scenario, screenshot,
  squash, text,
  waitForView, VIEWS,
} from './lib.mjs';

const URL = env('FLOTILLA_URL');

function sameSet(actual, expected, what) {
  const a = [...new Set(actual)].sort();
  const e = [...new Set(expected)].sort();
  if (JSON.stringify(a) !== JSON.stringify(e)) {
    throw new Error(`${what}: the page shows ${JSON.stringify(a)}, the API ${JSON.stringify(e)}`);
  }
}

async function checkOverview(page) {
  const status = await api('/api/v1/status');
  const online = await text(page, '#hosts-online');
  if (!new RegExp(`\\b${status.hosts.online}\\s*/\\s*${status.hosts.total}\\b`).test(online)) {
    throw new Error(`#hosts-online says "${online}", the API ${status.hosts.online} / ${status.hosts.total}`);
  }
  const revision = await text(page, '#revision');
  if (!status.revision) throw new Error('/api/v1/status has no revision');
  for (const part of [status.revision.sha.slice(0, 7), status.revision.subject, status.revision.author]) {
    if (!revision.includes(part)) throw new Error(`#revision "${revision}" lacks "${part}"`);
  }
  if (await page.$('#fail-static')) throw new Error('#fail-static is shown with no rejected revision');
  // Managed VMs by state.
  const managed = (await api('/api/v1/vms?managed=true')).vms;
  const byState = {};
  for (const vm of managed) byState[vm.state] = (byState[vm.state] || 0) + 1;
  const states = await text(page, '#vm-states');
  for (const [state, count] of Object.entries(byState)) {
    const n = `(?<!\\d)${count}(?!\\d)`;
    if (!new RegExp(`(${n}.*${state}|${state}.*${n})`, 'i').test(states)) {
      throw new Error(`#vm-states "${states}" does not say ${count} ${state}`);
    }
  }
  for (const id of ['#last-run', '#pending']) {
    if (!(await page.$(id))) throw new Error(`${id} is missing`);
  }
  // Capacity bars per pool and arch, as meters with values and a text label.
  const resources = await api('/api/v1/overview/resources');
  sameSet(await attributes(page, '.capacity[data-pool]', 'data-pool'),
          resources.pools.map((p) => p.pool), 'capacity per pool');
  sameSet(await attributes(page, '.capacity[data-arch]', 'data-arch'),
          resources.arches.map((a) => a.arch), 'capacity per arch');
  const meters = await page.$$eval('.capacity .bar', (bars) => bars.map((bar) => {
    const meter = bar.getAttribute('role') === 'meter' ? bar : bar.querySelector('[role="meter"]');
    return meter && {
      now: meter.getAttribute('aria-valuenow'), min: meter.getAttribute('aria-valuemin'),
      max: meter.getAttribute('aria-valuemax'),
      name: meter.getAttribute('aria-label') || meter.getAttribute('aria-labelledby'),
      // The values in words beside the bar (its own text or its row's), not colour only.
      text: bar.parentElement.innerText.trim(),
    };
  }));
  if (!meters.length) throw new Error('no .capacity .bar');
  for (const meter of meters) {
    if (!meter || meter.now === null || meter.min === null || meter.max === null || !meter.name ||
        !/\d/.test(meter.text)) {
      throw new Error(`a capacity bar is not a labelled meter: ${JSON.stringify(meter)}`);
    }
  }
  log(`overview: ${online} hosts online, ${states}; ${meters.length} meters`);
}

async function checkHosts(page) {
  const hosts = (await api('/api/v1/hosts')).hosts;
  const vms = (await api('/api/v1/vms')).vms;
  sameSet(await attributes(page, '.host-card[data-host]', 'data-host'), hosts.map((h) => h.name),
          'host cards');
  for (const host of hosts) {
    const card = `.host-card[data-host="${host.name}"]`;
    const state = await page.getAttribute(card, 'data-state');
    if (state !== host.state) throw new Error(`${card} data-state ${state}, the API ${host.state}`);
    const cardText = await page.textContent(card);
    if (!cardText.includes(host.pool)) throw new Error(`${card} does not name its pool ${host.pool}`);
    sameSet(await attributes(page, `${card} .vm-chip[data-vm]`, 'data-vm'),
            vms.filter((v) => v.host === host.name).map((v) => v.name), `VM chips of ${host.name}`);
    for (const vm of vms.filter((v) => v.host === host.name)) {
      const chip = `${card} .vm-chip[data-vm="${vm.name}"]`;
      const chipState = await page.getAttribute(chip, 'data-state');
      if (chipState !== vm.state) throw new Error(`${chip} data-state ${chipState}, the API ${vm.state}`);
      const label = `${await page.textContent(chip)} ${await page.getAttribute(chip, 'title') || ''}`;
      if (!label.includes(vm.state)) throw new Error(`${chip} says its state by colour only: "${label}"`);
    }
  }
  log(`hosts: ${hosts.length} cards with ${vms.length} VM chips`);
}

async function rowNames(page) {
  return attributes(page, 'table#vm-table tbody tr[data-vm]', 'data-vm');
}

async function checkVms(page) {
  const vms = (await api('/api/v1/vms')).vms;
  sameSet(await rowNames(page), vms.map((v) => v.name), 'VM rows');
  const count = await text(page, '#vm-count');
  if (!count.includes(String(vms.length))) throw new Error(`#vm-count "${count}" for ${vms.length} VMs`);
  for (const vm of vms) {
    const row = `table#vm-table tbody tr[data-vm="${vm.name}"]`;
    const cell = async (col) => await text(page, `${row} td[data-col="${col}"]`);
    if ((await cell('name')) !== vm.name && !(await cell('name')).includes(vm.name)) {
      throw new Error(`${row} name cell "${await cell('name')}"`);
    }
    if (!(await cell('host')).includes(vm.host)) throw new Error(`${row} host "${await cell('host')}", the API ${vm.host}`);
    if (!(await cell('state')).includes(vm.state)) throw new Error(`${row} state "${await cell('state')}", the API ${vm.state}`);
    if (vm.vmset && !(await cell('vmset')).includes(vm.vmset)) throw new Error(`${row} set "${await cell('vmset')}"`);
    if (vm.ip && !(await cell('ip')).includes(vm.ip)) throw new Error(`${row} IP "${await cell('ip')}", the API ${vm.ip}`);
    // A running VM offers the flotilla ssh command line to copy; others nothing to copy.
    const copy = await page.$(`${row} td[data-col="ssh"] button.copy-ssh`);
    const wanted = `flotilla ssh --server ${URL} ${vm.name}`;
    if (vm.state === 'running' && (await copy?.getAttribute('data-command')) !== wanted) {
      throw new Error(`${row} ssh command "${await copy?.getAttribute('data-command')}", wanted "${wanted}"`);
    }
    if (vm.state !== 'running' && copy) throw new Error(`${row} is ${vm.state} and offers ssh`);
    const managed = await page.getAttribute(row, 'data-managed');
    if (!vm.managed) {
      if (managed !== 'false') throw new Error(`${row} unmanaged but data-managed=${managed}`);
      if (!/unmanaged/i.test(await page.textContent(row))) throw new Error(`${row} has no "unmanaged" badge`);
    }
  }
  log(`vms: ${vms.length} rows as the API has them`);
}

async function checkPlan(page) {
  const plan = await api('/api/v1/plan');
  const actions = await page.$$('.plan-action[data-vm][data-kind]');
  if (actions.length !== plan.actions.length) {
    throw new Error(`${actions.length} .plan-action, the API's plan has ${plan.actions.length}`);
  }
  if (!(await page.$('#plan-summary'))) throw new Error('#plan-summary is missing');
  log(`plan: ${actions.length} actions, summary "${await text(page, '#plan-summary')}"`);
}

async function checkRuns(page) {
  const shown = (await attributes(page, 'table#runs tbody tr[data-run]', 'data-run')).map(Number);
  const runs = (await api('/api/v1/runs?limit=1000')).runs;
  if (!shown.length) throw new Error('no runs shown');
  for (const id of shown) {
    if (!runs.some((r) => r.id === id)) throw new Error(`run ${id} is shown but the API has none`);
  }
  // Newest first, as the API lists them.
  const sorted = [...shown].sort((a, b) => b - a);
  if (JSON.stringify(sorted) !== JSON.stringify(shown)) throw new Error(`runs not newest first: ${shown}`);
  const href = await page.getAttribute(`table#runs tbody tr[data-run="${shown[0]}"] a`, 'href');
  if (!href || !href.endsWith(`/runs/${shown[0]}`)) throw new Error(`run ${shown[0]} links to ${href}`);
  // Each run names the API token that asked for it, as the API records it.
  let asked = 0;
  for (const id of shown) {
    const actor = runs.find((r) => r.id === id).actor || null;
    const marked = await page.$(`table#runs tbody tr[data-run="${id}"] [data-actor]`);
    const cell = marked ? await marked.getAttribute('data-actor') : null;
    if (cell !== actor) throw new Error(`run ${id} shows the token ${cell}, the API says ${actor}`);
    if (actor) asked += 1;
  }
  if (!asked) throw new Error('no run shows the token that asked for it');
  log(`runs: ${shown.length} rows, newest ${shown[0]}, ${asked} asked for by a token`);
}

async function checkEvents(page) {
  const events = (await api('/api/v1/events?limit=100')).events;
  const levels = await attributes(page, 'table#events tbody tr.event[data-level]', 'data-level');
  if (events.length && !levels.length) throw new Error('no event rows though the API has events');
  for (const level of levels) {
    if (!['info', 'warn', 'error'].includes(level)) throw new Error(`event level ${level}`);
  }
  if (!events.length) {
    if (levels.length) throw new Error(`${levels.length} event rows, the API has none`);
    log('events: none recorded, none shown');
    return;
  }
  const shownText = await text(page, 'table#events tbody');
  const newestFew = events.slice(0, 3).map((e) => squash(e.message));
  if (!newestFew.some((m) => shownText.includes(m))) {
    throw new Error(`none of the newest events is shown: ${JSON.stringify(newestFew)}`);
  }
  log(`events: ${levels.length} rows`);
}

// Sorting, the text filter, and a filter in the URL.
async function checkVmTableControls(page) {
  const vms = (await api('/api/v1/vms')).vms;
  // Sorting by name, both ways.
  const names = vms.map((v) => v.name).sort((a, b) => a.localeCompare(b));
  for (let i = 0; i < 2; ++i) {
    await page.click('table#vm-table thead th[data-sort="name"]');
    const order = await eventually('the VM table sorted by name', async () => {
      const shown = await rowNames(page);
      const sort = await page.getAttribute('table#vm-table thead th[data-sort="name"]', 'aria-sort');
      const asc = JSON.stringify(shown) === JSON.stringify(names);
      const desc = JSON.stringify(shown) === JSON.stringify([...names].reverse());
      return (asc && sort === 'ascending') || (desc && sort === 'descending') ? sort : null;
    });
    log(`vms: sorted by name, ${order}`);
  }
  // The text filter, and the same filter from the URL.
  await page.fill('input#vm-filter', 'db-');
  await eventually('the VM filter "db-"', async () => {
    const shown = await rowNames(page);
    const expected = vms.filter((v) => v.name.includes('db-')).map((v) => v.name);
    return shown.length === expected.length && expected.every((n) => shown.includes(n));
  });
  await page.goto(`${URL}/vms?q=web`);
  await waitForView(page, 'vms');
  const filtered = await rowNames(page);
  const webs = vms.filter((v) => v.name.includes('web')).map((v) => v.name);
  sameSet(filtered, webs, '/vms?q=web');
  if ((await page.inputValue('input#vm-filter')) !== 'web') throw new Error('/vms?q=web: the filter box does not say web');
  log('vms: sorting and filtering work');
}


const checks = {
  overview: checkOverview, hosts: checkHosts, vms: checkVms, plan: checkPlan, runs: checkRuns,
  events: checkEvents,
};

await scenario('views', async ({ newPage }) => {
  await reconcile('views');  // a run asked for with the token: the runs view names it
  const page = await newPage();
  await open(page, '/', 'overview');
  for (const view of VIEWS) {
    if (view !== 'overview') await navigate(page, view);
    const current = await attributes(page, 'nav a[aria-current="page"]', 'data-nav');
    if (JSON.stringify(current) !== JSON.stringify([view])) {
      throw new Error(`on ${view}, aria-current="page" is on ${JSON.stringify(current)}`);
    }
    // Compared with the API once the page caught up with it (the fleet may have moved on).
    await eventually(`the ${view} view to match the API`, async () => {
      await checks[view](page);
      return true;
    });
    await waitForView(page, view);
    await screenshot(page, view);
  }
  // Each view has its own URL, and the back button walks them back.
  for (const view of [...VIEWS].reverse().slice(1, 4)) {
    await page.goBack();
    await waitForView(page, view);
  }
  log('the back button walks the views back');
  await checkVmTableControls(page);
  expectNoProblems(page, 'the views');
});
