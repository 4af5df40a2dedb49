// The API client: the bearer token lives in sessionStorage (this tab only), never in a URL or
// a cookie. Every call sends it; a 401 clears it and raises AuthError so the page asks again.

const TOKEN_KEY = 'flotilla.token';

// The last answer of each polled path with its ETag. The data answers carry Cache-Control:
// no-store and are fetched with cache: 'no-store', so the browser keeps nothing and never sends
// If-None-Match by itself: getJson sends it, and on 304 (no body) reuses what it parsed before.
// A handful of paths; forgotten with the token.
const lastAnswers = new Map();

export const token = {
  get() {
    try {
      return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
      return '';
    }
  },
  set(value) {
    sessionStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    lastAnswers.clear();
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage unavailable: nothing to clear
    }
  },
};

export class AuthError extends Error {
  constructor(message) {
    super(message);
    this.name = 'AuthError';
  }
}

export class HttpError extends Error {
  constructor(status, message, path) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.path = path;
  }

  // 503 "no observation yet": the loop has not observed the hosts; it will soon.
  get waiting() {
    return this.status === 503;
  }
}

function authHeaders(accept) {
  const value = token.get();
  if (!value) {
    throw new AuthError('Sign in with the API token.');
  }
  return {Authorization: `Bearer ${value}`, Accept: accept};
}

async function errorText(res) {
  try {
    const body = await res.json();
    if (body && typeof body.error === 'string') {
      return body.error;
    }
  } catch {
    // not JSON
  }
  return `${res.status} ${res.statusText}`.trim();
}

// GET a JSON endpoint. Throws AuthError (401), HttpError (other failures) or the AbortError.
// An unchanged view (same ETag) is answered 304 and resolves to the object parsed before.
export async function getJson(path, {signal} = {}) {
  const headers = authHeaders('application/json');
  const kept = lastAnswers.get(path);
  if (kept) {
    headers['If-None-Match'] = kept.etag;
  }
  let res;
  try {
    res = await fetch(path, {headers, signal, cache: 'no-store', credentials: 'omit'});
  } catch (err) {
    if (err && err.name === 'AbortError') {
      throw err;
    }
    throw new HttpError(0, 'The Flotilla server cannot be reached.', path);
  }
  if (res.status === 401) {
    token.clear();
    throw new AuthError(await errorText(res));
  }
  if (res.status === 304 && kept) {
    return kept.body;
  }
  if (!res.ok) {
    throw new HttpError(res.status, await errorText(res), path);
  }
  const body = await res.json();
  const etag = res.headers.get('ETag');
  if (etag) {
    lastAnswers.set(path, {etag, body});
  } else {
    lastAnswers.delete(path);
  }
  return body;
}

// Check a token before keeping it: true if the API accepts it, false on 401; throws otherwise.
export async function checkToken(candidate) {
  let res;
  try {
    res = await fetch('/api/v1/status', {
      headers: {Authorization: `Bearer ${candidate}`, Accept: 'application/json'},
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new HttpError(0, 'The Flotilla server cannot be reached.', '/api/v1/status');
  }
  if (res.status === 401) {
    return false;
  }
  if (!res.ok) {
    throw new HttpError(res.status, await errorText(res), '/api/v1/status');
  }
  return true;
}

// Open the change stream. Resolves to the Response (2xx) or throws AuthError/HttpError.
export async function openStream(signal) {
  const headers = authHeaders('text/event-stream');
  let res;
  try {
    res = await fetch('/api/v1/events/stream', {headers, signal, cache: 'no-store', credentials: 'omit'});
  } catch (err) {
    if (err && err.name === 'AbortError') {
      throw err;
    }
    throw new HttpError(0, 'The Flotilla server cannot be reached.', '/api/v1/events/stream');
  }
  if (res.status === 401) {
    token.clear();
    throw new AuthError(await errorText(res));
  }
  if (!res.ok || !res.body) {
    throw new HttpError(res.status, await errorText(res), '/api/v1/events/stream');
  }
  return res;
}

// Server-Sent Events parser over a fetch body: calls onEvent({event, data, id}), onRetry(ms) and
// onComment() (keepalives); resolves when the stream ends.
export async function readEvents(res, {onEvent, onRetry, onComment}) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = '';
  let data = [];
  let id = '';
  const line = (text) => {
    if (text === '') {
      if (data.length > 0) {
        onEvent({event: event || 'message', data: data.join('\n'), id});
      }
      event = '';
      data = [];
      return;
    }
    if (text.startsWith(':')) {
      onComment?.();
      return;
    }
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'event') {
      event = value;
    } else if (field === 'data') {
      data.push(value);
    } else if (field === 'id') {
      id = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) {
      onRetry?.(Number(value));
    }
  };
  for (;;) {
    const {value, done} = await reader.read();
    if (done) {
      break;
    }
    buffer += value;
    let end;
    while ((end = buffer.search(/\r\n|\n|\r(?!$)/)) >= 0) {
      const sep = buffer.startsWith('\r\n', end) ? 2 : 1;
      line(buffer.slice(0, end));
      buffer = buffer.slice(end + sep);
    }
  }
}
