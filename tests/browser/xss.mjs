// What the fleet says is text, never markup: a VM named <img src=x onerror=...> made on a host
// behind Flotilla's back (unmanaged), and a commit subject with <b> and <script>, are shown
// as written on every view, and nothing of them runs.
//   FLOTILLA_HOST    the host to make the VM on
//   FLOTILLA_BRANCH  the prepared commit with the markup subject

import {
  api, env, eventually, expectNoProblems, log, navigate, open, pushToMain, reconcile, scenario,
  sim, VIEWS,
} from './lib.mjs';

const NAME = '<img src=x onerror=window.__xss=1>';

async function expectInert(page, where) {
  const found = await page.evaluate(() => ({
    xss: typeof window.__xss,
    handlers: document.querySelectorAll('[onerror], [onload], [onclick]').length,
    images: [...document.images].filter((i) => !i.src.includes('/assets/') && !i.src.startsWith('data:'))
      .map((i) => i.outerHTML),
    scripts: [...document.scripts].filter((s) => !s.src).length,
    bold: document.querySelectorAll('main b').length,
  }));
  if (found.xss !== 'undefined' || found.handlers || found.images.length || found.scripts || found.bold) {
    throw new Error(`${where}: markup from the fleet was rendered: ${JSON.stringify(found)}`);
  }
}

await scenario('xss', async ({ newPage }) => {
  const page = await newPage();
  await open(page, '/vms', 'vms');
  await sim('POST', `/_sim/hosts/${env('FLOTILLA_HOST')}/vms`,
            { name: NAME, os: 'linux', cpu: 1, memory_mb: 1024, state: 'running' });
  log(`made ${NAME} on ${env('FLOTILLA_HOST')}`);
  await eventually('the API to list the VM', async () =>
    (await api('/api/v1/vms?managed=false')).vms.some((v) => v.name === NAME));

  const row = await eventually('the VM row', async () => {
    const rows = await page.$$('table#vm-table tbody tr[data-vm]');
    for (const r of rows) if ((await r.getAttribute('data-vm')) === NAME) return r;
    return null;
  });
  const cell = (await (await row.$('td[data-col="name"]')).textContent()).trim();
  if (!cell.includes(NAME)) throw new Error(`the name cell says "${cell}"`);
  if ((await row.getAttribute('data-managed')) !== 'false') throw new Error('the VM is not marked unmanaged');
  await expectInert(page, 'the VM table');

  await navigate(page, 'hosts');
  const chips = await page.$$eval('.vm-chip[data-vm]', (cs) => cs.map((c) => [c.dataset.vm, c.textContent + (c.title || '')]));
  const chip = chips.find(([vm]) => vm === NAME);
  if (!chip || !chip[1].includes(NAME.slice(0, 8))) throw new Error(`no chip shows the name as text: ${JSON.stringify(chip)}`);
  await expectInert(page, 'the hosts');

  const subject = (await (async () => {
    const sha = pushToMain(env('FLOTILLA_BRANCH'));
    await reconcile();
    return eventually('the markup commit in force', async () => {
      const s = await api('/api/v1/status');
      return s.revision && s.revision.sha === sha ? s.revision.subject : null;
    });
  })());
  await navigate(page, 'overview');
  await eventually('the subject as text in #revision', async () =>
    (await page.textContent('#revision')).includes(subject));
  await expectInert(page, 'the overview');
  for (const view of VIEWS) {
    await navigate(page, view);
    await expectInert(page, `the ${view} view`);
  }
  log('the VM name and the commit subject are text on every view');
  expectNoProblems(page, 'the markup');
});
