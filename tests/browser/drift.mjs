// A VM stopped behind Flotilla's back (hostsim's control API): the VM table shows it stopped and
// the Plan view a start for it, live in two tabs, and the VM table shows it running again once
// the loop started it.
//   FLOTILLA_DRIFT_VM  the managed VM to stop

import {
  api, env, eventually, expectNoProblems, log, open, scenario, sim,
} from './lib.mjs';

const VM = env('FLOTILLA_DRIFT_VM');

async function vmState(page) {
  const cell = await page.$(`table#vm-table tbody tr[data-vm="${VM}"] td[data-col="state"]`);
  return cell ? (await cell.textContent()).trim() : null;
}

await scenario('drift', async ({ newPage }) => {
  const vms = await newPage();
  await open(vms, `/vms?q=${VM}`, 'vms');
  const plan = await newPage();
  await open(plan, '/plan', 'plan');
  if (!(await vmState(vms))?.includes('running')) throw new Error(`${VM} is not shown running: ${await vmState(vms)}`);

  const vm = (await api('/api/v1/vms')).vms.find((v) => v.name === VM);
  if (!vm) throw new Error(`the API has no ${VM}`);
  await sim('PATCH', `/_sim/hosts/${vm.host}/vms/${VM}`, { state: 'stopped' });
  log(`stopped ${VM} on ${vm.host} behind Flotilla's back`);

  await Promise.all([
    eventually(`${VM} stopped in the VM table`, async () => (await vmState(vms))?.includes('stopped')),
    plan.waitForSelector(`.plan-action[data-vm="${VM}"][data-kind="start"]`, { state: 'attached' }),
  ]);
  log(`the VM table shows ${VM} stopped and the plan starts it`);
  await eventually(`${VM} running again`, async () => (await vmState(vms))?.includes('running'),
                   { timeout: 60000 });
  log(`${VM} runs again`);
  expectNoProblems(vms, 'the VM table');
  expectNoProblems(plan, 'the plan');
});
