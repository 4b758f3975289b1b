// The page talks to plait's HTTP API like any other program: JSON requests, server-sent events for
// answers that stream. Its session cookie signs it in; every change it asks for carries the session's
// CSRF token, which another site cannot read.

let csrf = null;

export function setCsrf(token) {
  csrf = token;
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function toError(response) {
  let message = `${response.status} ${response.statusText}`;
  let code;
  try {
    const body = await response.json();
    const error = body.error || body;
    message = error.message || (typeof error.detail === "string" ? error.detail : message);
    code = error.code;
  } catch {
    // not JSON: the status line says it
  }
  return new ApiError(response.status, message, code);
}

export async function request(path, { method = "GET", body, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-Plait-CSRF"] = csrf;
  const response = await fetch(path, {
    method, headers, signal, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await toError(response);
  return response;
}

export async function api(path, options = {}) {
  const response = await request(path, options);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

// POSTs ``body`` with stream: true and calls onEvent for each server-sent event until [DONE]. Aborting
// ``signal`` closes the connection, which stops the model on the server.
export async function stream(path, body, onEvent, signal) {
  const response = await request(path, { method: "POST", body: { ...body, stream: true }, signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const chunk = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of chunk.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        const event = JSON.parse(data);
        if (event.error) throw new ApiError(0, event.error.message || "the answer failed", event.error.code);
        onEvent(event);
      }
    }
  }
}
