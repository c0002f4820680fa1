// Calls to our REST API (/api/) as the signed-in browser: the session cookie, and the CSRF token on
// changes. Errors arrive in one shape, {"error": {"message", "type", "param", "code"}}.

const csrf = document.querySelector('meta[name="csrf-token"]').content;

export class ApiError extends Error {
  constructor(message, status, code, param) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

export async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = data.error || {};
    throw new ApiError(error.message || `Request failed (${response.status})`, response.status, error.code, error.param);
  }
  return data;
}

export function withQuery(url, params) {
  const target = new URL(url, location.origin);
  Object.entries(params).forEach(([name, value]) => target.searchParams.set(name, value));
  return target.pathname + target.search;
}
