// Events: what the loop recorded, newest first, filtered by level, kind and subject
// (/events?level=error&subject=mac-01).

import {getJson} from './api.js';
import {collator, h, patchList, patchSlot, setText, timeEl} from './dom.js';
import {chip, emptyState, searchField, selectField, syncOptions, viewHeader} from './ui.js';

const LIMIT = 500;
const LEVELS = [['', 'All levels'], ['info', 'Info'], ['warn', 'Warning'], ['error', 'Error']];

function makeRow(e) {
  return h('tr', {class: 'event', 'data-level': e.level, 'data-kind': e.kind, 'data-id': String(e.id)},
    h('td', {'data-col': 'at'}, timeEl(e.at)),
    h('td', {'data-col': 'level'}, chip(e.level)),
    h('td', {'data-col': 'kind'}, e.kind),
    h('td', {'data-col': 'subject', class: 'wrap'}, e.subject ? h('a', {href: `/events?subject=${encodeURIComponent(e.subject)}`,
      title: `Only events about ${e.subject}`}, e.subject) : '—'),
    h('td', {'data-col': 'message', class: 'wrap'}, e.message));
}

export default {
  name: 'events',
  nav: 'events',
  title: 'Events',
  create(ctx) {
    const params = ctx.params();
    const filters = {level: params.get('level') || '', kind: params.get('kind') || '', subject: params.get('subject') || ''};
    let events = null;
    const sub = h('p', {class: 'muted view-sub', 'aria-live': 'polite'});
    const kindField = selectField('event-kind', 'Kind', [['', 'All kinds']], filters.kind, (v) => set('kind', v, false));
    const kindSelect = kindField.querySelector('select');
    const tbody = h('tbody');
    const table = h('table', {id: 'events', class: 'data events-table'},
      h('caption', {class: 'visually-hidden'}, 'Events, newest first'),
      h('thead', null, h('tr', null, ['Time', 'Level', 'Kind', 'Subject', 'Message'].map((t) => h('th', {scope: 'col'}, t)))),
      tbody);
    const empty = h('div');
    ctx.root.append(
      viewHeader('Events', sub),
      h('form', {class: 'toolbar', role: 'search', onsubmit: (e) => e.preventDefault()},
        selectField('event-level', 'Level', LEVELS, filters.level, (v) => set('level', v, true)),
        kindField,
        searchField('event-subject', 'Subject', filters.subject, (v) => set('subject', v, false),
          {placeholder: 'host, VM or VMSet'})),
      h('div', {class: 'table-scroll'}, table), empty);

    async function set(key, value, refetch) {
      filters[key] = value;
      ctx.setParams({[key]: value.trim() || null});
      if (refetch) {
        await ctx.reload();
      } else {
        render();
      }
    }

    function render() {
      if (!events) {
        return;
      }
      const kinds = [...new Set(events.map((e) => e.kind))].sort(collator.compare);
      if (filters.kind && !kinds.includes(filters.kind)) {
        kinds.push(filters.kind);
      }
      syncOptions(kindSelect, [['', 'All kinds'], ...kinds.map((k) => [k, k])], filters.kind);
      const q = filters.subject.trim().toLowerCase();
      const shown = events.filter((e) => (!filters.kind || e.kind === filters.kind) &&
        (!q || String(e.subject || '').toLowerCase().includes(q)));
      patchList(tbody, shown, (e) => e.id ?? `${e.at}|${e.kind}|${e.subject}|${e.message}`, makeRow);
      setText(sub, shown.length === events.length
        ? `${events.length} newest event${events.length === 1 ? '' : 's'}${filters.level ? ` at level ${filters.level}` : ''}`
        : `${shown.length} of ${events.length} newest events match`);
      patchSlot(empty, [shown.length === 0, events.length === 0], () => shown.length > 0 ? null
        : emptyState(events.length === 0 ? 'Nothing recorded yet.' : 'No event matches the filters.'));
    }

    const api = {
      async load() {
        const query = new URLSearchParams({limit: String(LIMIT)});
        if (filters.level) {
          query.set('level', filters.level);
        }
        const body = await getJson(`/api/v1/events?${query}`, {signal: ctx.signal});
        events = body.events || [];
        render();
      },
    };
    return api;
  },
};
