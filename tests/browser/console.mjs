// No console error or warning, uncaught exception, failed request or error answer on any view:
// each URL opened directly (a fresh load), then every view through the navigation, in the dark
// colour scheme, and on a phone-sized screen; each page stays a few seconds for the live stream.

import {
  api, expectNoProblems, log, navigate, open, scenario, VIEWS, waitForView,
} from './lib.mjs';

const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

await scenario('console', async ({ newPage }) => {
  const runs = (await api('/api/v1/runs?limit=1000')).runs;
  const run = [...runs].reverse().find((r) => r.planned > 0) || runs[0];
  const urls = [
    ['/', 'overview'], ['/hosts', 'hosts'], ['/vms', 'vms'], ['/vms?q=web&sort=-cpu', 'vms'],
    ['/plan', 'plan'], ['/runs', 'runs'], ['/events', 'events'],
  ];
  const page = await newPage();
  for (const [url, view] of urls) {
    await open(page, url, view);
    await settle(1500);
    expectNoProblems(page, url);
  }
  await page.goto(new globalThis.URL(`/runs/${run.id}`, page.url()).href);
  await page.waitForSelector('main#view[data-ready="true"] #timeline', { state: 'attached' });
  await settle(1500);
  expectNoProblems(page, `/runs/${run.id}`);
  log(`${urls.length + 1} URLs load cleanly`);

  for (const [colorScheme, viewport] of [['dark', { width: 1280, height: 800 }],
                                         ['light', { width: 390, height: 844 }]]) {
    const other = await newPage({ viewport });
    await other.emulateMedia({ colorScheme });
    await open(other, '/', 'overview');
    for (const view of VIEWS.slice(1)) {
      await navigate(other, view);
      await waitForView(other, view);
      await settle(500);
    }
    expectNoProblems(other, `${colorScheme}, ${viewport.width}x${viewport.height}`);
    log(`every view through the navigation: ${colorScheme}, ${viewport.width}x${viewport.height}`);
  }
});
