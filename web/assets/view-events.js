// Events: what the loop recorded, newest first, filtered by level, kind and subject
// (/events?level=error&subject=mac-01).

import {getJson} from './api.js';
import {collator, h, patchList, patchSlot, setText, timeEl} from './dom.js';
import {chip, emptyState, searchField, selectField, syncOptions, viewHeader} from './ui.js';

const LIMIT = 500;
const LEVELS = [
  ['', 'All levels'],
  ['info', 'Info'],
  ['warn', 'Warning'],
  ['error', 'Error'],
];

function makeRow(e) {
  return h(
    'tr',
    {class: 'event', 'data-level': e.level, 'data-kind': e.kind, 'data-id': String(e.id)},
    h('td', {'data-col': 'at'}, timeEl(e.at)),
    h('td', {'data-col': 'level'}, chip(e.level)),
    h('td', {'data-col': 'kind'}, e.kind),
    h(
      'td',
      {'data-col': 'subject', class: 'wrap'},
      e.subject
        ? h(
            'a',
            {
              href: `/events?subject=${encodeURIComponent(e.subject)}`,
              title: `Only events about ${e.subject}`,
            },
            e.subject,
          )
        : '—',
    ),
    h('td', {'data-col': 'message', class: 'wrap'}, e.message),
  );
}

export default {
  name: 'events',
  nav: 'events',
  title: 'Events',
  create(ctx) {
    const params = ctx.params();
    const filters = {
      level: params.get('level') || '',
      kind: params.get('kind') || '',
      subject: params.get('subject') || '',
    };
    let events = null;
    const seenKinds = new Set();
    const sub = h('p', {class: 'muted view-sub', 'aria-live': 'polite'});
    const kindField = selectField('event-kind', 'Kind', [['', 'All kinds']], filters.kind, (v) =>
      set('kind', v),
    );
    const kindSelect = kindField.querySelector('select');
    const tbody = h('tbody');
    const table = h(
      'table',
      {id: 'events', class: 'data events-table'},
      h('caption', {class: 'visually-hidden'}, 'Events, newest first'),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          ['Time', 'Level', 'Kind', 'Subject', 'Message'].map((t) => h('th', {scope: 'col'}, t)),
        ),
      ),
      tbody,
    );
    const empty = h('div');
    ctx.root.append(
      viewHeader('Events', sub),
      h(
        'form',
        {class: 'toolbar', role: 'search', onsubmit: (e) => e.preventDefault()},
        selectField('event-level', 'Level', LEVELS, filters.level, (v) => set('level', v)),
        kindField,
        searchField('event-subject', 'Subject', filters.subject, (v) => set('subject', v), {
          placeholder: 'host, VM or VMSet',
        }),
      ),
      h('div', {class: 'table-scroll'}, table),
      empty,
    );

    // The server filters (so older events match too); the page filters what it has at once.
    function set(key, value) {
      filters[key] = value;
      ctx.setParams({[key]: value.trim() || null});
      render();
      ctx.reload();
    }

    function render() {
      if (!events) {
        return;
      }
      for (const e of events) {
        seenKinds.add(e.kind);
      }
      const kinds = [...seenKinds].sort(collator.compare);
      if (filters.kind && !kinds.includes(filters.kind)) {
        kinds.push(filters.kind);
      }
      syncOptions(kindSelect, [['', 'All kinds'], ...kinds.map((k) => [k, k])], filters.kind);
      const q = filters.subject.trim().toLowerCase();
      const shown = events.filter(
        (e) =>
          (!filters.level || e.level === filters.level) &&
          (!filters.kind || e.kind === filters.kind) &&
          (!q ||
            String(e.subject || '')
              .toLowerCase()
              .includes(q)),
      );
      patchList(tbody, shown, (e) => e.id ?? `${e.at}|${e.kind}|${e.subject}|${e.message}`, makeRow);
      const filtered = filters.level || filters.kind || q;
      setText(
        sub,
        `${shown.length === 0 ? 'No' : shown.length} ${filtered ? 'matching ' : ''}event${shown.length === 1 ? '' : 's'}` +
          (shown.length >= LIMIT ? ` (the newest ${LIMIT})` : ''),
      );
      patchSlot(empty, [shown.length === 0, Boolean(filtered)], () =>
        shown.length > 0
          ? null
          : emptyState(
              filters.level || filters.kind || q ? 'No event matches the filters.' : 'Nothing recorded yet.',
            ),
      );
    }

    let loads = 0;
    return {
      async load() {
        const mine = ++loads;
        const query = new URLSearchParams({limit: String(LIMIT)});
        for (const key of ['level', 'kind', 'subject']) {
          if (filters[key].trim()) {
            query.set(key, filters[key].trim());
          }
        }
        const body = await getJson(`/api/v1/events?${query}`, {signal: ctx.signal});
        if (mine !== loads) {
          return; // a newer filter's answer is on its way
        }
        events = body.events || [];
        render();
      },
    };
  },
};
