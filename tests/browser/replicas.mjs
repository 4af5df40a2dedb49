// A commit that raises replicas: the Plan view shows the new VMs' creates (grouped under their
// pool and VMSet), then the VM table shows them running, all without a reload.
//   FLOTILLA_BRANCH    the prepared commit, moved to main here
//   FLOTILLA_NEW_VMS   the VMs it adds, comma-separated

import {
  env, eventually, expectNoProblems, expectSameDocument, log, markDocument, navigate, open,
  pushToMain, reconcile, scenario, screenshot, waitForView,
} from './lib.mjs';

const NEW_VMS = env('FLOTILLA_NEW_VMS').split(',');

await scenario('replicas', async ({ newPage }) => {
  const page = await newPage();
  await open(page, '/plan', 'plan');
  for (const vm of NEW_VMS) {
    if (await page.$(`.plan-action[data-vm="${vm}"]`)) throw new Error(`${vm} is planned before the commit`);
  }
  await markDocument(page);

  const sha = pushToMain(env('FLOTILLA_BRANCH'));
  log(`main is now ${sha.slice(0, 7)}; reconcile: ${JSON.stringify(await reconcile())}`);

  for (const vm of NEW_VMS) {
    await page.waitForSelector(
      `.plan-group[data-vmset="web"] .plan-action[data-vm="${vm}"][data-kind="create"]`,
      { state: 'attached' });
  }
  log(`the plan shows the creates of ${NEW_VMS.join(', ')}`);
  await waitForView(page, 'plan');
  await screenshot(page, 'plan-pending');
  await expectSameDocument(page, 'the plan');

  await navigate(page, 'vms');
  await eventually(`${NEW_VMS.join(', ')} running in the VM table`, async () => {
    const states = await page.$$eval('table#vm-table tbody tr[data-vm]', (rows) =>
      Object.fromEntries(rows.map((r) => [r.dataset.vm, r.querySelector('td[data-col="state"]')?.textContent.trim()])));
    return NEW_VMS.every((vm) => states[vm] && states[vm].includes('running'));
  });
  await expectSameDocument(page, 'the VM table');
  log('the new VMs run, without a reload');
  expectNoProblems(page, 'the raised replicas');
});
