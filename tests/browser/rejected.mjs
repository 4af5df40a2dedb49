// A rejected commit: the overview shows the fail-static banner with the reason and every
// diagnostic as file:line:col: message (as /api/v1/status has them), without a reload, and the
// revision in force stays the one before.
//   FLOTILLA_BRANCH      the prepared invalid commit, moved to main here
//   FLOTILLA_DIAGNOSTIC  file:line of a diagnostic the commit must get

import {
  api, env, eventually, expectNoProblems, expectSameDocument, log, markDocument, navigate, open,
  pushToMain, reconcile, scenario, screenshot, squash, text,
} from './lib.mjs';

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
  const [file, line] = env('FLOTILLA_DIAGNOSTIC').split(':');
  const located = status.rejected.diagnostics.find((d) =>
    (d.file === file || d.file.startsWith(`${file}@`)) && d.line === Number(line) &&
    d.text.startsWith(`${d.file}:${line}:`));
  if (!located) {
    throw new Error(`the API has no diagnostic at ${file}:${line}: ${JSON.stringify(status.rejected.diagnostics)}`);
  }
  log(`the API's diagnostic: ${JSON.stringify(located)}`);

  await page.waitForSelector('#fail-static li.diagnostic', { state: 'visible' });
  const shown = await eventually('every diagnostic in #fail-static', async () => {
    const items = (await page.$$eval('#fail-static li.diagnostic', (lis) => lis.map((li) => li.innerText)))
      .map(squash);
    return expected.every((text) => items.some((item) => item.includes(text))) ? items : null;
  });
  log(`#fail-static shows ${shown.length} diagnostic(s): ${shown.join(' | ')}`);
  if (!shown.some((item) => item.includes(file) && item.includes(`:${line}:`))) {
    throw new Error(`no diagnostic in #fail-static says ${file}...:${line}:`);
  }
  const banner = await text(page, '#fail-static');
  if (!banner.includes(bad.slice(0, 7))) throw new Error(`#fail-static does not name ${bad.slice(0, 7)}: ${banner}`);
  if (status.rejected.subject && !banner.includes(status.rejected.subject)) {
    throw new Error(`#fail-static does not show the subject "${status.rejected.subject}": ${banner}`);
  }
  const revision = await text(page, '#revision');
  if (!revision.includes(inForce.slice(0, 7))) {
    throw new Error(`#revision "${revision}" is not the revision in force ${inForce.slice(0, 7)}`);
  }
  await expectSameDocument(page, 'the fail-static banner');
  await screenshot(page, 'fail-static');

  // The Events view has the rejection, as a warning naming the commit.
  await navigate(page, 'events');
  await eventually('the revision-rejected warning in the Events view', async () => {
    const rows = await page.$$eval('table#events tbody tr.event[data-level="warn"]',
                                   (trs) => trs.map((tr) => tr.innerText));
    return rows.some((row) => row.includes(bad.slice(0, 7)) || /reject/i.test(row));
  });
  log('the Events view lists the rejection');
  expectNoProblems(page, 'the rejected commit');
});
