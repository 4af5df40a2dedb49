// Logging in with the token: the form takes it, the overview renders the fleet, the token is
// kept in sessionStorage only (not in the URL, not in a cookie) and survives a reload; a link
// with #token=... logs in at once and loses its fragment.

import {
  env, expectNoProblems, log, scenario, submitToken, viewSelector, waitForView, WAIT_MS,
} from './lib.mjs';

const URL = env('FLOTILLA_URL');
const TOKEN = env('FLOTILLA_TOKEN');

async function expectTokenOnlyInSessionStorage(page, where) {
  const stored = await page.evaluate(() => sessionStorage.getItem('flotilla.token'));
  if (stored !== TOKEN) throw new Error(`${where}: sessionStorage flotilla.token is ${stored}`);
  if (page.url().includes(TOKEN)) throw new Error(`${where}: the token is in the URL ${page.url()}`);
  const cookies = await page.context().cookies();
  if (cookies.some((c) => c.value.includes(TOKEN))) throw new Error(`${where}: the token is in a cookie`);
  const local = await page.evaluate(() => JSON.stringify(localStorage));
  if (local.includes(TOKEN)) throw new Error(`${where}: the token is in localStorage`);
}

await scenario('login', async ({ newPage }) => {
  // The form.
  const page = await newPage();
  await page.goto(`${URL}/`);
  await page.waitForSelector('form#login input#token[type="password"]', { timeout: WAIT_MS });
  const before = await page.$(viewSelector('overview'));
  if (before) throw new Error('the overview rendered data before the login');
  await submitToken(page, TOKEN);
  await waitForView(page, 'overview');
  if (await page.$('form#login input#token:visible')) throw new Error('the login form is still shown');
  await expectTokenOnlyInSessionStorage(page, 'after the login');
  log('logged in through the form');

  // A reload keeps the session (sessionStorage).
  await page.reload();
  await waitForView(page, 'overview');
  await expectTokenOnlyInSessionStorage(page, 'after a reload');
  log('a reload keeps the session');
  expectNoProblems(page, 'the login');

  // The one-click link of `flotilla dev`: the token in the fragment, moved to sessionStorage.
  const link = await newPage();
  await link.goto(`${URL}/vms#token=${encodeURIComponent(TOKEN)}`);
  await waitForView(link, 'vms');
  const hash = await link.evaluate(() => window.location.hash);
  if (hash !== '') throw new Error(`the fragment was left in the address bar: ${hash}`);
  await expectTokenOnlyInSessionStorage(link, 'after the #token= link');
  if (!new globalThis.URL(link.url()).pathname.endsWith('/vms')) {
    throw new Error(`the #token= link did not stay on /vms: ${link.url()}`);
  }
  log('logged in through #token=');
  expectNoProblems(link, 'the #token= link');
});
