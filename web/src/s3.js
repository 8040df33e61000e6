// A small S3 client for the object browser: AWS Signature V4 with WebCrypto, path-style
// addressing, straight to Cumulo's S3 service (it answers CORS for the dashboard's origin).
// The keys are the user's own CloudStack API keys (the same identity in both APIs); they
// stay in this module's memory. Bodies are sent as UNSIGNED-PAYLOAD, so a large file is
// never read whole to hash it; uploads go through XMLHttpRequest for progress events.

const enc = new TextEncoder();
let creds = null; // { endpoint, region, key, secret }

export function configure(value) {
  creds = value;
}

export function configured() {
  return Boolean(creds && creds.key);
}

function hex(bytes) {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(text) {
  return hex(await crypto.subtle.digest("SHA-256", enc.encode(text)));
}

async function hmac(key, text) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(text)));
}

// RFC 3986 encoding as SigV4 wants it ("/" kept in object key paths).
export function uriEncode(text, keepSlash = false) {
  return [...enc.encode(text)]
    .map((b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === "/")) return c;
      return `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
    })
    .join("");
}

function stamp(now = new Date()) {
  const iso = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  return { amzDate: iso, day: iso.slice(0, 8) };
}

function target(bucket, key) {
  const url = new URL(creds.endpoint);
  const path = `/${bucket ? uriEncode(bucket) : ""}${key !== undefined ? `/${uriEncode(key, true)}` : ""}`;
  return { url, path: bucket ? path : "/" };
}

function canonicalQuery(query) {
  return Object.keys(query)
    .sort()
    .map((k) => `${uriEncode(k)}=${uriEncode(String(query[k]))}`)
    .join("&");
}

async function signature(day, amzDate, canonical) {
  const scope = `${day}/${creds.region}/s3/aws4_request`;
  const toSign = `AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${await sha256(canonical)}`;
  let key = await hmac(enc.encode(`AWS4${creds.secret}`), day);
  key = await hmac(key, creds.region);
  key = await hmac(key, "s3");
  key = await hmac(key, "aws4_request");
  return { scope, signature: hex(await hmac(key, toSign)) };
}

// Headers for a signed request (header-signed, UNSIGNED-PAYLOAD).
async function signedHeaders(method, bucket, key, query, extra = {}) {
  const { url, path } = target(bucket, key);
  const { amzDate, day } = stamp();
  const headers = { ...extra, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": amzDate };
  const all = { host: url.host, ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v).trim()])) };
  const names = Object.keys(all).sort();
  const canonical = [
    method,
    path,
    canonicalQuery(query),
    names.map((n) => `${n}:${all[n]}\n`).join(""),
    names.join(";"),
    "UNSIGNED-PAYLOAD",
  ].join("\n");
  const { scope, signature: sig } = await signature(day, amzDate, canonical);
  headers.Authorization =
    `AWS4-HMAC-SHA256 Credential=${creds.key}/${scope}, SignedHeaders=${names.join(";")}, Signature=${sig}`;
  const qs = canonicalQuery(query);
  return { href: `${url.origin}${path}${qs ? `?${qs}` : ""}`, headers };
}

export class S3Error extends Error {
  constructor(status, code, message) {
    super(message ? `${code}: ${message}` : code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

function parse(text) {
  return new DOMParser().parseFromString(text, "application/xml");
}

function first(node, tag) {
  const found = node.getElementsByTagName(tag)[0];
  return found ? found.textContent : "";
}

async function request(method, bucket, key, { query = {}, headers = {}, body } = {}) {
  const signed = await signedHeaders(method, bucket, key, query, headers);
  let resp;
  try {
    resp = await fetch(signed.href, { method, headers: signed.headers, body });
  } catch {
    throw new S3Error(0, "ServiceUnavailable", `the object storage service at ${creds.endpoint} does not answer`);
  }
  if (!resp.ok) {
    const text = await resp.text();
    const doc = text ? parse(text) : null;
    throw new S3Error(resp.status, doc ? first(doc, "Code") : "", doc ? first(doc, "Message") : "");
  }
  return resp;
}

export async function listBuckets() {
  const doc = parse(await (await request("GET", "", undefined)).text());
  return [...doc.getElementsByTagName("Bucket")].map((b) => ({
    name: first(b, "Name"),
    created: first(b, "CreationDate"),
  }));
}

export async function createBucket(name) {
  await request("PUT", name, undefined);
}

export async function deleteBucket(name) {
  await request("DELETE", name, undefined);
}

export async function setVersioning(bucket, enabled) {
  const status = enabled ? "Enabled" : "Suspended";
  await request("PUT", bucket, undefined, {
    query: { versioning: "" },
    headers: { "content-type": "application/xml" },
    body: `<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>${status}</Status></VersioningConfiguration>`,
  });
}

export async function getVersioning(bucket) {
  const doc = parse(await (await request("GET", bucket, undefined, { query: { versioning: "" } })).text());
  return first(doc, "Status") || "Off";
}

// Configuration bodies need an integrity header (S3 wants Content-MD5 or a checksum); WebCrypto
// has SHA-256, so the body carries x-amz-checksum-sha256.
async function configure_(bucket, sub, xml) {
  const digest = await crypto.subtle.digest("SHA-256", enc.encode(xml));
  const b64 = btoa(String.fromCharCode(...new Uint8Array(digest)));
  await request("PUT", bucket, undefined, {
    query: { [sub]: "" },
    headers: { "content-type": "application/xml", "x-amz-checksum-sha256": b64, "x-amz-sdk-checksum-algorithm": "SHA256" },
    body: xml,
  });
}

function esc(text) {
  return String(text).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

// CORS: one rule for the given origins and methods (every header allowed, ETag exposed).
export async function setCors(bucket, origins, methods, maxAge) {
  const rule = [
    ...origins.map((o) => `<AllowedOrigin>${esc(o)}</AllowedOrigin>`),
    ...methods.map((m) => `<AllowedMethod>${esc(m)}</AllowedMethod>`),
    "<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>",
    maxAge ? `<MaxAgeSeconds>${Number(maxAge)}</MaxAgeSeconds>` : "",
  ].join("");
  await configure_(bucket, "cors", `<CORSConfiguration><CORSRule>${rule}</CORSRule></CORSConfiguration>`);
}

export async function deleteCors(bucket) {
  await request("DELETE", bucket, undefined, { query: { cors: "" } });
}

// Lifecycle: expire current objects, noncurrent versions and stale multipart uploads after
// the given numbers of days (empty: not that part), for the whole bucket or a prefix.
export async function setLifecycle(bucket, { prefix = "", days, noncurrentDays, abortDays }) {
  const parts = [
    `<ID>dashboard</ID><Filter><Prefix>${esc(prefix)}</Prefix></Filter><Status>Enabled</Status>`,
    days ? `<Expiration><Days>${Number(days)}</Days></Expiration>` : "",
    noncurrentDays ? `<NoncurrentVersionExpiration><NoncurrentDays>${Number(noncurrentDays)}</NoncurrentDays></NoncurrentVersionExpiration>` : "",
    abortDays ? `<AbortIncompleteMultipartUpload><DaysAfterInitiation>${Number(abortDays)}</DaysAfterInitiation></AbortIncompleteMultipartUpload>` : "",
  ].join("");
  await configure_(bucket, "lifecycle", `<LifecycleConfiguration><Rule>${parts}</Rule></LifecycleConfiguration>`);
}

export async function deleteLifecycle(bucket) {
  await request("DELETE", bucket, undefined, { query: { lifecycle: "" } });
}

export async function setAcl(bucket, canned) {
  await request("PUT", bucket, undefined, { query: { acl: "" }, headers: { "x-amz-acl": canned } });
}

// One level of a bucket: folders (common prefixes) and objects, every page.
export async function listLevel(bucket, prefix) {
  const folders = [];
  const objects = [];
  let token = "";
  for (;;) {
    const query = { "list-type": "2", delimiter: "/", prefix, "max-keys": "1000" };
    if (token) query["continuation-token"] = token;
    const doc = parse(await (await request("GET", bucket, undefined, { query })).text());
    for (const p of doc.getElementsByTagName("CommonPrefixes")) folders.push(first(p, "Prefix"));
    for (const c of doc.getElementsByTagName("Contents")) {
      const key = first(c, "Key");
      if (key === prefix) continue; // the folder marker itself
      objects.push({ key, size: Number(first(c, "Size")), modified: first(c, "LastModified"), etag: first(c, "ETag") });
    }
    token = first(doc, "NextContinuationToken");
    if (first(doc, "IsTruncated") !== "true" || !token) break;
  }
  return { folders, objects };
}

export async function deleteObject(bucket, key) {
  await request("DELETE", bucket, key);
}

export async function createFolder(bucket, prefix) {
  await request("PUT", bucket, prefix, { body: new Blob([]) });
}

// A presigned GET link that works for anyone holding it until it expires.
export async function presign(bucket, key, seconds, asDownload = false) {
  const { url, path } = target(bucket, key);
  const { amzDate, day } = stamp();
  const scope = `${day}/${creds.region}/s3/aws4_request`;
  const query = {
    "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
    "X-Amz-Credential": `${creds.key}/${scope}`,
    "X-Amz-Date": amzDate,
    "X-Amz-Expires": String(seconds),
    "X-Amz-SignedHeaders": "host",
  };
  if (asDownload) {
    const name = key.split("/").pop();
    query["response-content-disposition"] = `attachment; filename="${name.replace(/"/g, "")}"`;
  }
  const canonical = ["GET", path, canonicalQuery(query), `host:${url.host}\n`, "host", "UNSIGNED-PAYLOAD"].join("\n");
  const { signature: sig } = await signature(day, amzDate, canonical);
  return `${url.origin}${path}?${canonicalQuery(query)}&X-Amz-Signature=${sig}`;
}

function send(method, href, headers, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, href);
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) resolve(xhr);
      else {
        const doc = xhr.responseText ? parse(xhr.responseText) : null;
        reject(new S3Error(xhr.status, doc ? first(doc, "Code") : "", doc ? first(doc, "Message") : ""));
      }
    };
    xhr.onerror = () => reject(new S3Error(0, "NetworkError", "the upload was interrupted"));
    xhr.send(body);
  });
}

export const PART = 8 * 1024 * 1024;

// Upload a File: one PUT when small, a multipart upload otherwise (aborted on failure, so
// nothing half-written stays). onProgress(bytesSent) as the bytes go.
export async function upload(bucket, key, file, onProgress = () => {}) {
  const type = { "content-type": file.type || "application/octet-stream" };
  if (file.size <= 2 * PART) {
    const s = await signedHeaders("PUT", bucket, key, {}, type);
    await send("PUT", s.href, s.headers, file, onProgress);
    return;
  }
  const init = await request("POST", bucket, key, { query: { uploads: "" }, headers: type });
  const uploadId = first(parse(await init.text()), "UploadId");
  const parts = [];
  try {
    for (let n = 1, offset = 0; offset < file.size; n += 1, offset += PART) {
      const s = await signedHeaders("PUT", bucket, key, { partNumber: String(n), uploadId });
      const xhr = await send("PUT", s.href, s.headers, file.slice(offset, offset + PART), (sent) =>
        onProgress(offset + sent),
      );
      parts.push(`<Part><PartNumber>${n}</PartNumber><ETag>${xhr.getResponseHeader("ETag")}</ETag></Part>`);
    }
    await request("POST", bucket, key, {
      query: { uploadId },
      headers: { "content-type": "application/xml" },
      body: `<CompleteMultipartUpload>${parts.join("")}</CompleteMultipartUpload>`,
    });
  } catch (err) {
    await request("DELETE", bucket, key, { query: { uploadId } }).catch(() => {});
    throw err;
  }
}

// The S3 service's admin API (/_admin/…, JSON), signed like any S3 request by an admin.
export async function admin(method, path, { query = {}, body } = {}) {
  const [, ...rest] = path.split("/");
  const headers = body ? { "content-type": "application/json" } : {};
  const resp = await request(method, "_admin", rest.join("/"), {
    query, headers, body: body ? JSON.stringify(body) : undefined,
  });
  const text = await resp.text();
  return text ? JSON.parse(text) : {};
}
