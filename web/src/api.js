// The dashboard speaks only the public CloudStack API, as any client: a login session
// (the JSESSIONID cookie the server sets, plus the sessionkey parameter on every call).
// The key lives in this module's memory only; after a reload it is asked again from
// /client/session (same-origin, cookie-authenticated). Nothing secret goes to storage.

export class ApiError extends Error {
  constructor(command, status, errorcode, errortext) {
    super(errortext || `${command} failed (${status})`);
    this.command = command;
    this.status = status;
    this.errorcode = errorcode;
  }
}

let sessionKey = "";
const listeners = new Set();

// The push stream authenticates like the API; EventSource cannot send headers, so the key
// goes in its query (the session cookie goes along by itself).
export function sessionKeyForStream() {
  return sessionKey;
}

export function onSessionLost(fn) {
  listeners.add(fn);
}

// The identity of the session the browser already holds (after a reload), or null.
export async function resume() {
  const resp = await fetch("/client/session", { credentials: "same-origin" });
  if (!resp.ok) return null;
  const found = await resp.json();
  sessionKey = found.sessionkey;
  return found;
}

async function post(form) {
  const resp = await fetch("/client/api", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form),
  });
  let body = {};
  try {
    body = await resp.json();
  } catch {
    body = {};
  }
  const inner = Object.values(body)[0] || {};
  return { resp, inner };
}

export async function call(command, params = {}) {
  const form = { command, response: "json", sessionkey: sessionKey };
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") form[k] = String(v);
  }
  const { resp, inner } = await post(form);
  if (resp.status === 401) {
    sessionKey = "";
    listeners.forEach((fn) => fn());
  }
  if (!resp.ok) {
    throw new ApiError(command, resp.status, inner.errorcode, inner.errortext);
  }
  return inner;
}

export async function login(username, password, domain) {
  const { resp, inner } = await post({
    command: "login",
    response: "json",
    username,
    password,
    domain: domain || "/",
  });
  if (!resp.ok) throw new ApiError("login", resp.status, inner.errorcode, inner.errortext);
  sessionKey = inner.sessionkey;
  return inner;
}

export async function logout() {
  try {
    await call("logout");
  } finally {
    sessionKey = "";
  }
}

// The objects of a list answer ({count, <key>: [...]}; an empty list is {}).
export function rows(answer) {
  for (const [k, v] of Object.entries(answer || {})) {
    if (k !== "count" && Array.isArray(v)) return v;
  }
  return [];
}

export async function list(command, params = {}) {
  const answer = await call(command, params);
  return { items: rows(answer), count: answer.count || 0 };
}

// Run an async command to its end; onProgress sees the job while it is pending.
export async function run(command, params = {}, onProgress = () => {}) {
  const submitted = await call(command, params);
  if (!submitted.jobid) return submitted;
  let delay = 200;
  for (;;) {
    const job = await call("queryAsyncJobResult", { jobid: submitted.jobid });
    if (job.jobstatus === 1) return job.jobresult || {};
    if (job.jobstatus === 2) {
      const r = job.jobresult || {};
      throw new ApiError(command, 200, r.errorcode, r.errortext || "the job failed");
    }
    onProgress(job);
    await new Promise((ok) => setTimeout(ok, delay));
    delay = Math.min(delay * 1.5, 2000);
  }
}

// POST a file to getUploadParamsFor*'s postURL as CloudStack's browser upload does
// (multipart "file" field, X-signature/X-metadata/X-expires); onProgress sees 0..100.
export function upload(params, file, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", params.postURL);
    xhr.setRequestHeader("X-signature", params.signature);
    xhr.setRequestHeader("X-metadata", params.metadata);
    xhr.setRequestHeader("X-expires", params.expires);
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) onProgress(Math.round((100 * e.loaded) / e.total));
    };
    xhr.onload = () =>
      xhr.status === 200
        ? resolve()
        : reject(new Error(`upload failed (${xhr.status}): ${xhr.responseText.trim()}`));
    xhr.onerror = () => reject(new Error("upload failed: the connection was lost"));
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}
