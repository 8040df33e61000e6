// The dashboard's everyday paths in a real Chromium, against a real server the pytest
// wrapper (tests/browser/test_dashboard.py) started with a simulator zone. It prints one
// JSON object with what it did; the wrapper checks the cloud's side through the API.
//
// env: BASE_URL, CHROMIUM, ARTIFACTS, USER_NAME, USER_PASSWORD, USER_DOMAIN, ADMIN_PASSWORD,
//      ZONE_NAME, TEMPLATE_NAME, HOST_NAME, VM_NAME, NET_NAME, NET_OFFERING, VOL_NAME,
//      DISK_OFFERING, ISO_NAME
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const env = process.env;
const base = env.BASE_URL;
const shots = env.ARTIFACTS;
mkdirSync(shots, { recursive: true });
const done = {};

async function login(page, user, password, domain) {
  await page.goto(`${base}/client/`);
  await page.waitForURL(/#\/login/);
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByLabel("Domain").fill(domain);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: `Welcome, ${user}` }).waitFor();
}

function row(page, name) {
  return page.locator(`tr[data-row="${name}"]`);
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  // --- a plain user -------------------------------------------------------------------
  const user = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await user.newPage();
  const failures = [];
  page.on("pageerror", (err) => failures.push(String(err)));
  await page.goto(`${base}/client/`);
  await page.waitForURL(/#\/login/);
  await page.getByLabel("User name").fill(env.USER_NAME);
  await page.getByLabel("Password").fill("wrong-password");
  await page.getByLabel("Domain").fill(env.USER_DOMAIN);
  await page.getByRole("button", { name: "Log in" }).click();
  done.badLoginError = await page.getByRole("alert").innerText();
  await login(page, env.USER_NAME, env.USER_PASSWORD, env.USER_DOMAIN);
  await page.locator('[data-test="live"]', { hasText: "● live" }).waitFor({ timeout: 15000 });
  done.liveStream = true;
  await page.screenshot({ path: `${shots}/home-user.png` });
  done.userSeesOperatorMenu = (await page.locator('[data-test="operator-menu"]').count()) > 0;
  await page.goto(`${base}/client/#/r/hosts`);
  await page.getByRole("heading", { name: "Not allowed" }).waitFor();
  done.operatorUrlRefused = true;
  await page.screenshot({ path: `${shots}/forbidden.png` });

  await page.getByRole("link", { name: "Back to the dashboard" }).click();

  // a network of my own, through the generic resource pages
  await page.getByRole("link", { name: "Networks" }).click();
  await page.getByRole("button", { name: "Create network" }).click();
  let dialog = page.getByRole("dialog");
  await dialog.getByLabel("Name").fill(env.NET_NAME);
  await dialog.getByLabel("Zone").selectOption({ label: env.ZONE_NAME });
  await dialog.locator('select[name="networkofferingid"] option', { hasText: env.NET_OFFERING }).waitFor({ state: "attached" });
  await dialog.getByLabel("Network offering").selectOption({ label: env.NET_OFFERING });
  await dialog.getByRole("button", { name: "OK" }).click();
  await row(page, env.NET_NAME).waitFor();
  done.networkCreated = true;

  // deploy on it, and watch it start without reloading
  await page.getByRole("link", { name: "Instances" }).first().click();
  await page.getByRole("link", { name: "Deploy instance" }).click();
  await page.getByLabel("Name").fill(env.VM_NAME);
  await page.getByLabel("Zone").selectOption({ label: env.ZONE_NAME });
  await page.locator('select[name="templateid"] option', { hasText: env.TEMPLATE_NAME }).first().waitFor({ state: "attached" });
  await page.getByLabel("Template").selectOption({ label: env.TEMPLATE_NAME });
  await page.locator('select[name="networkids"] option', { hasText: env.NET_NAME }).waitFor({ state: "attached" });
  await page.getByLabel("Network").selectOption({ label: env.NET_NAME });
  await page.screenshot({ path: `${shots}/deploy.png` });
  const navigations = [];
  page.on("framenavigated", (f) => f === page.mainFrame() && navigations.push(f.url()));
  await page.getByRole("button", { name: "Deploy" }).click();
  await page.waitForURL(/#\/instances$/);
  const state = row(page, env.VM_NAME).locator('[data-test="state"]');
  await state.filter({ hasText: "Running" }).waitFor({ timeout: 60000 });
  done.reachedRunning = true;
  await page.screenshot({ path: `${shots}/instances.png` });

  // its detail page: facts, NICs, volumes and live charts
  await row(page, env.VM_NAME).getByRole("link", { name: env.VM_NAME }).click();
  await page.getByRole("heading", { name: env.VM_NAME }).waitFor();
  done.detailNetwork = await page.locator("td", { hasText: env.NET_NAME }).count();
  done.detailRootVolume = await page.locator('tr[data-row="ROOT-1"], tr[data-row^="ROOT"]').count();
  done.charts = await page.locator("figure.chart canvas").count();
  await page.waitForTimeout(5500); // one more sample: the charts get their first points
  await page.screenshot({ path: `${shots}/instance.png` });
  // an ISO into its CD-ROM drive, and out again (attachIso/detachIso)
  await page.getByRole("button", { name: "Attach ISO" }).click();
  dialog = page.getByRole("dialog");
  await dialog.locator('select[name="id"] option', { hasText: env.ISO_NAME }).waitFor({ state: "attached" });
  await dialog.getByLabel("ISO").selectOption({ label: env.ISO_NAME });
  await dialog.getByRole("button", { name: "OK" }).click();
  await page.getByRole("button", { name: "Detach ISO" }).waitFor({ timeout: 30000 });
  done.isoAttached = await page.locator("dd", { hasText: env.ISO_NAME }).count();
  await page.getByRole("button", { name: "Detach ISO" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Confirm" }).click();
  await page.getByRole("button", { name: "Attach ISO" }).waitFor({ timeout: 30000 });
  done.isoDetached = true;
  await page.goBack();
  await page.waitForURL(/#\/instances$/);

  // a data volume, attached to it
  await page.getByRole("link", { name: "Volumes" }).click();
  await page.getByRole("button", { name: "Create volume" }).click();
  dialog = page.getByRole("dialog");
  await dialog.getByLabel("Name").fill(env.VOL_NAME);
  await dialog.getByLabel("Zone").selectOption({ label: env.ZONE_NAME });
  await dialog.locator('select[name="diskofferingid"] option', { hasText: env.DISK_OFFERING }).waitFor({ state: "attached" });
  await dialog.getByLabel("Disk offering").selectOption({ label: env.DISK_OFFERING });
  await dialog.getByRole("button", { name: "OK" }).click();
  await row(page, env.VOL_NAME).getByRole("button", { name: "Attach" }).click();
  dialog = page.getByRole("dialog");
  await dialog.locator('select[name="virtualmachineid"] option', { hasText: env.VM_NAME }).waitFor({ state: "attached" });
  await dialog.getByLabel("Instance").selectOption({ label: env.VM_NAME });
  await dialog.getByRole("button", { name: "OK" }).click();
  await row(page, env.VOL_NAME).locator('[data-col="vmname"]', { hasText: env.VM_NAME }).waitFor();
  done.volumeAttached = true;
  await page.screenshot({ path: `${shots}/volumes.png` });

  // a public IP of my network, and a port forwarding rule to the instance
  await page.getByRole("link", { name: "Networks" }).click();
  await row(page, env.NET_NAME).getByRole("button", { name: "Acquire IP" }).click();
  await page.getByRole("link", { name: "Public IPs" }).click();
  const acquired = page.locator("tr", { has: page.locator('[data-col="issourcenat"]', { hasText: "false" }) });
  await acquired.first().waitFor();
  done.acquiredIp = await acquired.first().locator('[data-col="ipaddress"]').innerText();
  await acquired.first().getByRole("button", { name: "Port forwarding" }).click();
  dialog = page.getByRole("dialog");
  await dialog.getByLabel("Public port").fill("2222");
  await dialog.getByLabel("Private port").fill("22");
  await dialog.locator('select[name="virtualmachineid"] option', { hasText: env.VM_NAME }).waitFor({ state: "attached" });
  await dialog.getByLabel("Instance").selectOption({ label: env.VM_NAME });
  await dialog.getByRole("button", { name: "OK" }).click();
  await dialog.waitFor({ state: "detached" });
  await page.getByRole("link", { name: "Port forwarding" }).click();
  await row(page, `${done.acquiredIp}:2222`).waitFor();
  done.portForwarded = true;
  await page.screenshot({ path: `${shots}/port-forwarding.png` });

  // stop the instance, still without reloading
  await page.getByRole("link", { name: "Instances" }).first().click();
  await row(page, env.VM_NAME).getByRole("button", { name: "Stop" }).click();
  await state.filter({ hasText: "Stopped" }).waitFor({ timeout: 60000 });
  done.stopped = true;
  // hash changes only: the page was never reloaded while the VM started and stopped
  done.fullReloads = navigations.filter((u) => !u.includes("#")).length;

  // usage and cost for this month
  await page.getByRole("link", { name: "Usage and cost" }).click();
  await page.locator('[data-card="total"] .value').waitFor();
  done.usageTotal = await page.locator('[data-card="total"] .value').innerText();
  await page.screenshot({ path: `${shots}/usage.png` });

  await page.reload();
  await page.getByRole("link", { name: "Instances" }).first().click();
  await row(page, env.VM_NAME).waitFor();
  done.sessionSurvivesReload = true;
  done.storageKeys = await page.evaluate(() => [
    ...Object.keys(localStorage),
    ...Object.keys(sessionStorage),
  ]);
  done.pageErrors = failures;

  // --- an operator --------------------------------------------------------------------
  const admin = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const ops = await admin.newPage();
  await login(ops, "admin", env.ADMIN_PASSWORD, "/");
  done.adminSeesOperatorMenu = (await ops.locator('[data-test="operator-menu"]').count()) > 0;
  await ops.screenshot({ path: `${shots}/home-admin.png` });
  await ops.getByRole("link", { name: "Hosts" }).click();
  await ops.getByLabel("Search").fill(env.HOST_NAME);
  const host = row(ops, env.HOST_NAME);
  await host.getByRole("button", { name: "Disable" }).click();
  await host.locator('[data-col="resourcestate"]', { hasText: "Disabled" }).waitFor();
  done.hostDisabled = true;
  await ops.screenshot({ path: `${shots}/hosts.png` });

  // every page the operator's menu offers opens without an API error
  const opsErrors = [];
  ops.on("pageerror", (err) => opsErrors.push(String(err)));
  const titles = await ops.locator("nav.side a").allInnerTexts();
  done.pagesVisited = [];
  done.pageFailures = [];
  for (const title of titles) {
    try {
      await ops.locator("nav.side").getByRole("link", { name: title, exact: true }).first().click({ timeout: 10000 });
      await ops.locator("main h1").first().waitFor({ timeout: 15000 });
      await ops.waitForTimeout(400); // the page's first API answers
      const failed = await ops.locator("main .error").allInnerTexts();
      if (failed.length) done.pageFailures.push(`${title}: ${failed.join(" | ")}`);
    } catch (err) {
      done.pageFailures.push(`${title}: ${String(err).split("\n")[0]}`);
    }
    done.pagesVisited.push(title);
  }
  done.opsPageErrors = opsErrors;

  // a narrow screen still shows the menu and the table
  await ops.setViewportSize({ width: 420, height: 800 });
  await ops.screenshot({ path: `${shots}/hosts-narrow.png` });
} catch (err) {
  done.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(done));
process.exit(done.error ? 1 : 0);
