// One run: its summary, the timeline (one lane per host, one bar per action), the failures with
// their messages, and every action in a table (the timeline's accessible twin).

import {HttpError, getJson} from './api.js';
import {fmtDuration, h, parseTime, patchList, patchSlot, setText, shortSha, timeEl} from './dom.js';
import {chip, emptyState} from './ui.js';
import {describe, fmtOffset, outcomeOf, renderTimeline} from './timeline.js';
import {runDuration} from './view-runs.js';

const OUTCOMES = ['succeeded', 'failed', 'abandoned', 'running'];

function legend() {
  return h(
    'ul',
    {class: 'legend', 'aria-label': 'Legend'},
    OUTCOMES.map((o) =>
      h('li', null, h('span', {class: 'legend-swatch bar', 'data-outcome': o, 'aria-hidden': 'true'}), o),
    ),
  );
}

function summary(run, actions) {
  const d = runDuration(run);
  const hosts = new Set(actions.map((a) => a.host)).size;
  const items = [
    ['Outcome', chip(run.outcome)],
    ['Trigger', run.trigger || '—'],
    [
      'Revision',
      run.revision
        ? h('code', {title: run.revision}, run.revision.includes('@') ? run.revision : shortSha(run.revision))
        : '—',
    ],
    ['Started', timeEl(run.started_at)],
    ['Finished', run.finished_at ? timeEl(run.finished_at) : h('span', {class: 'muted'}, 'still running')],
    ['Duration', fmtDuration(d)],
    [
      'Actions',
      `${run.succeeded} of ${run.planned} succeeded${run.failed ? `, ${run.failed} failed` : ''}` +
        `${run.abandoned ? `, ${run.abandoned} abandoned` : ''} on ${hosts} host${hosts === 1 ? '' : 's'}`,
    ],
    ['Findings', String(run.findings ?? 0)],
  ];
  if (run.actor) {
    items.push(['Asked by', `token ${run.actor}`]);
  }
  if (run.approval) {
    items.push(['Approval', run.approval]);
  }
  if (run.message) {
    items.push(['Message', run.message]);
  }
  return h(
    'dl',
    {class: 'run-summary'},
    items.map(([k, v]) => h('div', null, h('dt', null, k), h('dd', null, v))),
  );
}

function failureItem(a) {
  return h(
    'li',
    {'data-vm': a.vm, 'data-kind': a.kind, 'data-outcome': outcomeOf(a)},
    chip(outcomeOf(a)),
    ' ',
    h('strong', null, `${a.kind} ${a.vm || '(image)'}`),
    h('span', {class: 'muted'}, ` on ${a.host}${a.attempt > 1 ? `, attempt ${a.attempt}` : ''}: `),
    h('span', {class: 'failure-message'}, a.error || 'no message recorded'),
  );
}

function actionRow(a, t0) {
  const start = parseTime(a.started_at);
  const end = parseTime(a.finished_at);
  const outcome = outcomeOf(a);
  return h(
    'tr',
    {'data-action': String(a.id), 'data-outcome': outcome},
    h('td', {class: 'num'}, String(a.plan_action ?? '')),
    h('td', {class: 'wrap'}, a.vm || '—'),
    h('td', null, chip(a.kind)),
    h('td', {class: 'wrap'}, a.from_host && a.from_host !== a.host ? `${a.from_host} → ${a.host}` : a.host),
    h('td', null, chip(outcome)),
    h('td', {class: 'num'}, start !== null ? fmtOffset((start - t0) / 1000) : '—'),
    h(
      'td',
      {class: 'num'},
      start === null ? '—' : end !== null ? fmtDuration(end - start) : `${fmtDuration(Date.now() - start)}…`,
    ),
    h('td', {class: 'num'}, String(a.attempt || 1)),
    h(
      'td',
      {class: 'wrap'},
      a.error ? h('span', {class: 'failure-message'}, a.error) : h('span', {class: 'muted'}, a.doing || ''),
    ),
  );
}

export default {
  name: 'run',
  nav: 'runs',
  title: 'Run',
  create(ctx) {
    const id = ctx.match[1];
    ctx.setTitle(`Run #${id}`);
    const title = h('h1', null, `Run #${id}`);
    const head = h(
      'div',
      {class: 'view-head'},
      title,
      h('p', {class: 'muted view-sub'}, h('a', {href: '/runs'}, '← All runs')),
    );
    const summaryEl = h('div', {class: 'card'});
    const timeline = h('div', {id: 'timeline', class: 'timeline', 'aria-describedby': 'timeline-help'});
    const detail = h(
      'p',
      {id: 'timeline-detail', class: 'timeline-detail', 'aria-live': 'polite'},
      'Point at or focus a bar to see its details.',
    );
    const timelineCard = h(
      'section',
      {class: 'card timeline-card', 'aria-labelledby': 'timeline-title'},
      h(
        'div',
        {class: 'card-head'},
        h('h2', {id: 'timeline-title', class: 'card-title'}, 'Timeline'),
        legend(),
      ),
      h(
        'p',
        {id: 'timeline-help', class: 'muted small'},
        'One lane per host, one bar per action from its start to its finish. Tab into the timeline, then use the arrow keys.',
      ),
      h('div', {class: 'timeline-scroll'}, timeline),
      detail,
    );
    const failuresCard = h(
      'section',
      {class: 'card failures-card', 'aria-labelledby': 'failures-title', hidden: true},
      h('h2', {id: 'failures-title', class: 'card-title'}, 'Failures'),
    );
    const failures = h('ul', {id: 'run-failures', class: 'failures'});
    failuresCard.append(failures);
    const tbody = h('tbody');
    const table = h(
      'table',
      {id: 'run-actions', class: 'data'},
      h('caption', {class: 'visually-hidden'}, 'Every action of the run'),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          ['#', 'VM', 'Kind', 'Host', 'Outcome', 'Start', 'Took', 'Attempt', 'Error or progress'].map((t) =>
            h('th', {scope: 'col'}, t),
          ),
        ),
      ),
      tbody,
    );
    const actionsCard = h(
      'section',
      {class: 'card', 'aria-labelledby': 'actions-title'},
      h('h2', {id: 'actions-title', class: 'card-title'}, 'Actions'),
      h('div', {class: 'table-scroll'}, table),
    );
    const empty = h('div');
    ctx.root.classList.add('stack');
    ctx.root.append(head, summaryEl, failuresCard, empty, timelineCard, actionsCard);

    let data = null;
    let ticker = null;

    const show = (event) => {
      const bar = event.target.closest && event.target.closest('.bar[data-id]');
      if (bar) {
        setText(detail, bar.getAttribute('title'));
      }
    };
    timeline.addEventListener('focusin', show);
    timeline.addEventListener('mouseover', show);

    function render() {
      const [run, actions] = data;
      const now = Date.now();
      const running = renderTimeline(timeline, run, actions, now);
      const t0 = Math.min(
        parseTime(run.started_at) ?? now,
        ...actions.map((a) => parseTime(a.started_at) ?? now),
      );
      timelineCard.hidden = actions.length === 0;
      actionsCard.hidden = actions.length === 0;
      empty.hidden = actions.length > 0;
      patchSlot(empty, actions.length === 0, () =>
        actions.length > 0
          ? null
          : emptyState(
              run.outcome === 'running' ? 'No action has started yet.' : 'This run had nothing to do.',
            ),
      );
      const failed = actions.filter((a) => a.error || outcomeOf(a) === 'failed');
      failuresCard.hidden = failed.length === 0;
      patchList(failures, failed, (a) => a.id, failureItem);
      const ordered = [...actions].sort(
        (a, b) => (parseTime(a.started_at) ?? now) - (parseTime(b.started_at) ?? now) || a.id - b.id,
      );
      patchList(
        tbody,
        ordered,
        (a) => a.id,
        (a) => actionRow(a, t0),
        {sigOf: (a) => `${JSON.stringify(a)}|${t0}|${a.finished_at ? 0 : Math.floor(now / 1000)}`},
      );
      const focused = timeline.querySelector('.bar:focus');
      if (focused) {
        setText(detail, describe(actions.find((a) => String(a.id) === focused.dataset.id) || {}, t0, now));
      }
      clearInterval(ticker);
      ticker = running ? setInterval(() => render(), 1000) : null;
    }

    return {
      async load() {
        let run;
        try {
          run = await getJson(`/api/v1/runs/${encodeURIComponent(id)}`, {signal: ctx.signal});
        } catch (err) {
          if (err instanceof HttpError && err.status === 404) {
            patchSlot(summaryEl, 'missing', () =>
              emptyState(`Run #${id} is not recorded: it was pruned or never ran.`),
            );
            timelineCard.hidden = true;
            actionsCard.hidden = true;
            return;
          }
          throw err;
        }
        // An action the store left unfinished in a run that ended did not finish: show it so.
        const ended = run.finished_at && run.outcome !== 'running';
        const actions = (run.actions || []).map((a) =>
          ended && !a.finished_at && outcomeOf(a) === 'running'
            ? {
                ...a,
                state: 'abandoned',
                finished_at: run.finished_at,
                error: a.error || 'It did not finish before the run ended.',
              }
            : a,
        );
        patchSlot(title, [run.id, run.outcome], () => [`Run #${run.id} `, chip(run.outcome)]);
        patchSlot(summaryEl, [run, run.finished_at ? 0 : Math.floor(Date.now() / 5000)], () =>
          summary(run, actions),
        );
        data = [run, actions];
        render();
      },
      destroy() {
        clearInterval(ticker);
      },
    };
  },
};
