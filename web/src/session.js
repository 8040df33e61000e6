// Who is logged in and which APIs their role may call (from listApis): menus and pages
// are shown only when the APIs behind them are allowed, as CloudStack's UI does.
import { reactive } from "vue";
import * as api from "./api.js";
import { start as startLive, stop as stopLive } from "./live.js";

export const session = reactive({
  ready: false,
  user: null,
  apis: new Set(),
});

export function can(...names) {
  return names.every((n) => session.apis.has(n));
}

export function isAdmin() {
  return session.user && session.user.type !== "0";
}

async function loadApis() {
  const apis = await api.list("listApis");
  session.apis = new Set(apis.items.map((a) => a.name));
}

export async function restore() {
  try {
    const found = await api.resume();
    if (found) {
      await loadApis();
      session.user = found;
      startLive();
    }
  } catch {
    session.user = null;
  } finally {
    session.ready = true;
  }
  return Boolean(session.user);
}

export async function signIn(username, password, domain) {
  const answer = await api.login(username, password, domain);
  await loadApis();
  session.user = {
    userid: answer.userid,
    username: answer.username,
    account: answer.account,
    domainid: answer.domainid,
    type: answer.type,
  };
  startLive();
  return answer;
}

export async function signOut() {
  stopLive();
  await api.logout().catch(() => {});
  session.user = null;
  session.apis = new Set();
}

api.onSessionLost(() => {
  stopLive();
  session.user = null;
});
