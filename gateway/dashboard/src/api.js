// The analytics API (GET /v1/analytics/...): bearer auth, the filters as query parameters, and
// errors in the gateway's shape ({"error": {"code", "message"}}) turned into ApiError.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status; // 0: the gateway did not answer
  }
}

export class AnalyticsClient {
  constructor(token, base = '/v1/analytics') {
    this.token = token;
    this.base = base;
  }

  async get(path, params, signal) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== '') query.set(name, String(value));
    }
    let response;
    try {
      response = await fetch(`${this.base}/${path}?${query}`, {
        headers: { Authorization: `Bearer ${this.token}`, Accept: 'application/json' },
        cache: 'no-store',
        signal,
      });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, `the gateway did not answer (${err.message})`);
    }
    if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
    return response.json();
  }
}

async function errorMessage(response) {
  if (response.status === 404) return `the analytics API is not on this gateway (404 for ${new URL(response.url).pathname})`;
  try {
    const body = await response.json();
    const message = body?.error?.message ?? body?.detail;
    if (message) return `${response.status}: ${typeof message === 'string' ? message : JSON.stringify(message)}`;
  } catch {
    // not JSON: fall through to the status line
  }
  return `${response.status} ${response.statusText}`;
}
