// A rejected commit: the overview shows the fail-static banner with the reason and every
// diagnostic as file:line:col: message (as /api/v1/status has them), without a reload, and the
// revision in force stays the one before.
//   FLOTILLA_BRANCH      the prepared invalid commit, moved to main here
//   FLOTILLA_DIAGNOSTIC  file:line one diagnostic must start with

import {
  api, env, eventually, expectNoProblems, expectSameDocument, log, markDocument, open, pushToMain,
  reconcile, scenario, screenshot,
} from './lib.mjs';

const squash = (text) => text.replace(/\s+/g, ' ').trim();

await scenario('rejected', async ({ newPage }) => {
  const page = await newPage();
  await open(page, '/', 'overview');
  if (await page.$('#fail-static')) throw new Error('#fail-static is shown before the bad commit');
  const inForce = (await api('/api/v1/status')).revision.sha;
  await markDocument(page);

  const bad = pushToMain(env('FLOTILLA_BRANCH'));
  try {
    log(`main is now ${bad.slice(0, 7)}; reconcile: ${JSON.stringify(await reconcile())}`);
  } catch (error) {
    log(`reconcile: ${error.message}`);  // the loop fetches main every second anyway
  }
  const status = await eventually('/api/v1/status to report the rejected revision', async () => {
    const s = await api('/api/v1/status');
    return s.rejected && s.rejected.sha === bad ? s : null;
  });
  const expected = status.rejected.diagnostics.map((d) => squash(d.text));
  if (!expected.some((text) => text.startsWith(`${env('FLOTILLA_DIAGNOSTIC')}:`))) {
    throw new Error(`the API's diagnostics lack ${env('FLOTILLA_DIAGNOSTIC')}: ${JSON.stringify(expected)}`);
  }

  await page.waitForSelector('#fail-static li.diagnostic', { state: 'visible' });
  const shown = await eventually('every diagnostic in #fail-static', async () => {
    const items = (await page.$$eval('#fail-static li.diagnostic', (lis) => lis.map((li) => li.textContent)))
      .map(squash);
    return expected.every((text) => items.some((item) => item.includes(text))) ? items : null;
  });
  log(`#fail-static shows ${shown.length} diagnostic(s): ${shown.join(' | ')}`);
  const banner = squash(await page.textContent('#fail-static'));
  if (!banner.includes(bad.slice(0, 7))) throw new Error(`#fail-static does not name ${bad.slice(0, 7)}: ${banner}`);
  if (status.rejected.subject && !banner.includes(status.rejected.subject)) {
    throw new Error(`#fail-static does not show the subject "${status.rejected.subject}": ${banner}`);
  }
  const revision = squash(await page.textContent('#revision'));
  if (!revision.includes(inForce.slice(0, 7))) {
    throw new Error(`#revision "${revision}" is not the revision in force ${inForce.slice(0, 7)}`);
  }
  await expectSameDocument(page, 'the fail-static banner');
  await screenshot(page, 'fail-static');
  expectNoProblems(page, 'the rejected commit');
});
