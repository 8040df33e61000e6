// Connecting the object browser: the S3 endpoint and region come from /client/session, the
// keys from getUserKeys (the user's own CloudStack API keys are their S3 credentials).
import * as api from "./api.js";
import * as s3 from "./s3.js";

export async function connectS3() {
  if (s3.configured()) return { ready: true };
  const resp = await fetch("/client/session", { credentials: "same-origin" });
  if (!resp.ok) throw new Error("the session ended; log in again");
  const info = await resp.json();
  const keys = (await api.call("getUserKeys", { id: info.userid })).userkeys || {};
  if (!keys.apikey) return { ready: false, userid: info.userid };
  s3.configure({ endpoint: info.s3endpoint, region: info.s3region, key: keys.apikey, secret: keys.secretkey });
  return { ready: true };
}

export async function generateKeys(userid) {
  await api.call("registerUserKeys", { id: userid });
  return connectS3();
}
