// Runs: the history of passes, newest first (trigger, revision, outcome, counts, duration), each
// linking to its timeline at /runs/{id}.

import {getJson} from './api.js';
import {fmtDuration, h, parseTime, patchList, patchSlot, setText, shortSha, timeEl} from './dom.js';
import {chip, emptyState, viewHeader} from './ui.js';

const PAGE = 50;

export function runDuration(r, now = Date.now()) {
  const start = parseTime(r.started_at);
  if (start === null) {
    return null;
  }
  const end = parseTime(r.finished_at);
  return (end ?? now) - start;
}

function counts(r) {
  const parts = [h('span', {title: 'planned'}, `${r.planned} planned`)];
  if (r.succeeded) {
    parts.push(h('span', {class: 'count-ok'}, `✓ ${r.succeeded}`));
  }
  if (r.failed) {
    parts.push(h('span', {class: 'count-bad'}, `✕ ${r.failed} failed`));
  }
  if (r.abandoned) {
    parts.push(h('span', {class: 'count-warn'}, `⊘ ${r.abandoned} abandoned`));
  }
  return h('span', {class: 'counts'}, parts);
}

function makeRow(r) {
  const d = runDuration(r);
  return h(
    'tr',
    {'data-run': String(r.id), 'data-outcome': r.outcome},
    h('td', {'data-col': 'id'}, h('a', {href: `/runs/${r.id}`}, `#${r.id}`)),
    h('td', {'data-col': 'started'}, timeEl(r.started_at)),
    h(
      'td',
      {'data-col': 'trigger'},
      r.trigger || '—',
      r.actor ? h('span', {class: 'muted small', 'data-actor': r.actor}, ` by token ${r.actor}`) : null,
    ),
    h(
      'td',
      {'data-col': 'revision'},
      r.revision ? h('code', {title: r.revision}, shortSha(r.revision.replace(/^.*@/, ''))) : '—',
    ),
    h('td', {'data-col': 'outcome'}, chip(r.outcome)),
    h('td', {'data-col': 'actions'}, counts(r)),
    h('td', {'data-col': 'findings', class: 'num'}, String(r.findings ?? 0)),
    h('td', {'data-col': 'duration', class: 'num'}, fmtDuration(d)),
    h(
      'td',
      {'data-col': 'message', class: 'wrap'},
      r.message || '',
      r.approval ? h('span', {class: 'muted small'}, ` approved: ${r.approval}`) : null,
    ),
  );
}

export default {
  name: 'runs',
  nav: 'runs',
  title: 'Runs',
  create(ctx) {
    let limit = Math.max(PAGE, Number(ctx.params().get('limit')) || PAGE);
    const sub = h('p', {class: 'muted view-sub'});
    const tbody = h('tbody');
    const table = h(
      'table',
      {id: 'runs', class: 'data runs-table'},
      h('caption', {class: 'visually-hidden'}, 'Reconcile runs, newest first'),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          [
            'Run',
            'Started',
            'Trigger',
            'Revision',
            'Outcome',
            'Actions',
            'Findings',
            'Duration',
            'Message',
          ].map((t) =>
            h('th', {scope: 'col', class: t === 'Findings' || t === 'Duration' ? 'num' : null}, t),
          ),
        ),
      ),
      tbody,
    );
    const empty = h('div');
    const more = h('button', {
      type: 'button',
      class: 'more',
      hidden: true,
      onclick: async () => {
        limit += PAGE;
        ctx.setParams({limit});
        await ctx.reload();
      },
    });
    ctx.root.append(viewHeader('Runs', sub), h('div', {class: 'table-scroll'}, table), empty, more);

    return {
      async load() {
        const body = await getJson(`/api/v1/runs?limit=${limit}`, {signal: ctx.signal});
        const list = body.runs || [];
        patchList(tbody, list, (r) => r.id, makeRow, {
          sigOf: (r) => JSON.stringify([r, r.finished_at ? 0 : Math.floor(Date.now() / 1000)]),
        });
        setText(sub, list.length === 0 ? 'No runs recorded yet.' : `${list.length} newest runs`);
        patchSlot(empty, list.length === 0, () =>
          list.length === 0 ? emptyState('The loop has not run a pass yet.') : null,
        );
        more.hidden = list.length < limit;
        setText(more, `Show ${PAGE} more`);
      },
    };
  },
};
