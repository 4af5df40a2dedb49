// Live updates: one fetch()-read Server-Sent Events stream (/api/v1/events/stream) that says
// "something changed" (a new generation). It reconnects by itself with backoff, says "stale" in
// #live while disconnected, and falls back to polling /api/v1/changes when the server has no
// stream to spare (503).

import {AuthError, HttpError, getJson, openStream, readEvents} from './api.js';

const POLL_MS = 2000;
const POLL_ROUNDS_BEFORE_RETRY = 30; // poll for about a minute, then try the stream again
const MAX_BACKOFF_MS = 30000;
const SILENCE_MS = 45000; // the server sends a keepalive every 15 s

const LABELS = {
  live: 'Live',
  stale: 'Stale: reconnecting',
  polling: 'Live (polling)',
};

export class LiveUpdates {
  // onChange(): the fleet changed, refresh the view. onAuthError(err): the token was refused.
  constructor({indicator, onChange, onAuthError}) {
    this.indicator = indicator;
    this.onChange = onChange;
    this.onAuthError = onAuthError;
    this.generation = undefined;
    this.retryMs = 2000;
    this.stopped = true;
    this.controller = null;
    this.timer = null;
    this.wake = null;
    this.watchdog = null;
  }

  // Remember the generation the current view was loaded at (from /api/v1/changes).
  async baseline() {
    try {
      const body = await getJson('/api/v1/changes');
      if (body && body.generation !== undefined && this.generation === undefined) {
        this.generation = String(body.generation);
      }
    } catch (err) {
      if (err instanceof AuthError) {
        throw err;
      }
      // no baseline: the first generation the stream sends becomes it
    }
  }

  start() {
    if (!this.stopped) {
      return;
    }
    this.stopped = false;
    this.indicator.hidden = false;
    this.setState('stale', 'Connecting…');
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
    clearTimeout(this.watchdog);
    this.wake?.();
    this.indicator.hidden = true;
  }

  setState(state, text = LABELS[state], detail = '') {
    const el = this.indicator;
    if (el.dataset.state !== state) {
      el.dataset.state = state;
    }
    const label = el.querySelector('.live-text');
    if (label.textContent !== text) {
      label.textContent = text;
    }
    el.title = detail || text;
  }

  sleep(ms) {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(this.timer);
        resolve();
      };
    });
  }

  seen(generation) {
    const g = String(generation);
    if (this.generation === undefined) {
      this.generation = g;
      return;
    }
    if (g !== this.generation) {
      this.generation = g;
      this.onChange();
    }
  }

  pet() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.controller?.abort(), SILENCE_MS);
  }

  async loop() {
    let failures = 0;
    while (!this.stopped) {
      this.controller = new AbortController();
      let connected = false;
      try {
        const res = await openStream(this.controller.signal);
        connected = true;
        failures = 0;
        this.setState('live', LABELS.live, 'Connected to the change stream');
        this.pet();
        await readEvents(res, {
          onEvent: (e) => {
            this.pet();
            if (e.event === 'change') {
              let generation = e.data;
              try {
                const body = JSON.parse(e.data);
                generation = body.generation ?? e.data;
              } catch {
                // a bare generation
              }
              this.seen(generation);
            }
          },
          onRetry: (ms) => {
            this.retryMs = Math.max(500, Math.min(ms, MAX_BACKOFF_MS));
          },
          onComment: () => this.pet(),
        });
      } catch (err) {
        if (this.stopped) {
          return;
        }
        if (err instanceof AuthError) {
          this.stop();
          this.onAuthError(err);
          return;
        }
        if (err instanceof HttpError && err.status === 503) {
          await this.poll();
          continue;
        }
      } finally {
        clearTimeout(this.watchdog);
      }
      if (this.stopped) {
        return;
      }
      if (connected) {
        continue; // the server ended the stream (it does after a while): reconnect at once
      }
      failures += 1;
      const backoff = Math.min(MAX_BACKOFF_MS, this.retryMs * 2 ** Math.min(failures - 1, 5));
      const delay = Math.round(backoff * (0.8 + Math.random() * 0.4));
      this.setState(
        'stale',
        LABELS.stale,
        `Disconnected from the server: the page may be out of date. Retrying in ${Math.round(delay / 1000)} s.`,
      );
      await this.sleep(delay);
    }
  }

  async poll() {
    for (let round = 0; round < POLL_ROUNDS_BEFORE_RETRY && !this.stopped; round += 1) {
      try {
        const body = await getJson('/api/v1/changes');
        this.setState(
          'polling',
          LABELS.polling,
          `The server has no change stream to spare: asking for changes every ${POLL_MS / 1000} s`,
        );
        this.seen(body.generation);
      } catch (err) {
        if (err instanceof AuthError) {
          this.stop();
          this.onAuthError(err);
          return;
        }
        this.setState('stale', LABELS.stale, `Cannot ask for changes: ${err.message}`);
      }
      await this.sleep(POLL_MS);
    }
  }
}
