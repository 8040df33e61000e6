// Live updates from the push stream (/client/events/stream, Server-Sent Events of the
// caller's own events): pages subscribe and refresh when something they show changed, so a
// job's end shows at once instead of at the next poll. When the stream is unavailable the
// pages keep polling as before (more often), so nothing depends on it.
import { reactive } from "vue";
import { sessionKeyForStream } from "./api.js";

export const live = reactive({ connected: false });
const listeners = new Set();
let source = null;

export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function start() {
  if (source || typeof EventSource === "undefined") return;
  const key = sessionKeyForStream();
  const url = `/client/events/stream${key ? `?sessionkey=${encodeURIComponent(key)}` : ""}`;
  source = new EventSource(url);
  source.onopen = () => (live.connected = true);
  source.onerror = () => {
    live.connected = false; // EventSource retries by itself ("retry: 1000" from the server)
  };
  const deliver = (e) => {
    let data = {};
    try {
      data = JSON.parse(e.data);
    } catch {
      return;
    }
    listeners.forEach((fn) => fn(data));
  };
  source.onmessage = deliver;
  for (const kind of ["ActionEvent", "AsyncJobEvent", "ResourceStateEvent", "UsageEvent", "AlertEvent"]) {
    source.addEventListener(kind, deliver);
  }
}

export function stop() {
  if (source) source.close();
  source = null;
  live.connected = false;
}
