// A wrong token is refused: the form stays, #login-error says so, no fleet data is shown, and
// no token is kept. So is a token without the read role (FLOTILLA_CI_TOKEN), with the API's
// reason. The right token afterwards still works.

import {
  api, env, expectNoProblems, log, scenario, submitToken, viewSelector, waitForView, WAIT_MS,
} from './lib.mjs';

const URL = env('FLOTILLA_URL');

await scenario('wrong_token', async ({ newPage }) => {
  const vms = (await api('/api/v1/vms')).vms;
  const hosts = (await api('/api/v1/hosts')).hosts;
  // The refused tokens' 401s and 403s are expected; nothing else may fail.
  const page = await newPage({
    allowStatus: (url, status) => (status === 401 || status === 403) && url.includes('/api/'),
  });
  await page.goto(`${URL}/`);
  await submitToken(page, 'not-the-token');
  await page.waitForSelector('#login-error', { state: 'visible', timeout: WAIT_MS });
  const message = (await page.textContent('#login-error')).trim();
  if (!message) throw new Error('#login-error is empty');
  log(`refused: "${message}"`);
  if (!(await page.$('form#login input#token'))) throw new Error('the login form is gone');
  if (await page.$(viewSelector('overview'))) throw new Error('the overview rendered data');
  const stored = await page.evaluate(() => sessionStorage.getItem('flotilla.token'));
  if (stored) throw new Error(`a refused token was kept: ${stored}`);
  // Nothing of the fleet is on the page.
  const text = await page.evaluate(() => document.body.innerText);
  for (const name of [...vms.map((v) => v.name), ...hosts.map((h) => h.name)]) {
    if (text.includes(name)) throw new Error(`the page shows ${name} without a valid token`);
  }
  if (await page.$('[data-vm], [data-host]')) throw new Error('fleet elements are on the page');

  // A deep link without a token asks for it too.
  await page.goto(`${URL}/hosts`);
  await page.waitForSelector('form#login input#token', { timeout: WAIT_MS });
  if (await page.$('[data-host]')) throw new Error('/hosts shows hosts without a token');

  // A token without the read role: refused with the reason, not kept.
  await submitToken(page, env('FLOTILLA_CI_TOKEN'));
  await page.waitForFunction(
    () => (document.querySelector('#login-error')?.textContent || '').includes('read role'),
    null, { timeout: WAIT_MS });
  log(`refused: "${(await page.textContent('#login-error')).trim()}"`);
  if (await page.evaluate(() => sessionStorage.getItem('flotilla.token'))) {
    throw new Error('a token without the read role was kept');
  }
  if (await page.$('[data-host]')) throw new Error('/hosts shows hosts with a token that may not read');

  // The right one still works.
  await submitToken(page, env('FLOTILLA_TOKEN'));
  await waitForView(page, 'hosts');
  log('the right token works after a wrong one');
  expectNoProblems(page, 'the wrong token');
});
