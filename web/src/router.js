// Pages, each guarded by the APIs it needs: a user whose role lacks them gets the
// "not allowed" page, never a broken screen. Hash history: every URL is served by the
// same index.html with no server-side routing.
import { createRouter, createWebHashHistory } from "vue-router";
import { session, can, restore } from "./session.js";
import Login from "./pages/Login.vue";
import Home from "./pages/Home.vue";
import Instances from "./pages/Instances.vue";
import Deploy from "./pages/Deploy.vue";
import Forbidden from "./pages/Forbidden.vue";
import ResourcePage from "./pages/ResourcePage.vue";
import ObjectStorage from "./pages/ObjectStorage.vue";
import Bucket from "./pages/Bucket.vue";
import Instance from "./pages/Instance.vue";
import Usage from "./pages/Usage.vue";
import S3Users from "./pages/S3Users.vue";
import { resource, resources } from "./resources.js";

export const pages = [
  { path: "/", name: "home", component: Home, meta: { title: "Dashboard", apis: [] } },
  {
    path: "/instances",
    name: "instances",
    component: Instances,
    meta: { title: "Instances", apis: ["listVirtualMachines"] },
  },
  {
    path: "/instances/new",
    name: "deploy",
    component: Deploy,
    meta: { title: "Deploy instance", apis: ["deployVirtualMachine"], hidden: true },
  },
  {
    path: "/instances/:id",
    name: "instance",
    component: Instance,
    meta: { title: "Instance", apis: ["listVirtualMachines"], hidden: true },
  },
  {
    path: "/storage",
    name: "storage",
    component: ObjectStorage,
    meta: { title: "Object storage", apis: ["getUserKeys"] },
  },
  {
    path: "/storage/:bucket",
    name: "bucket",
    component: Bucket,
    meta: { title: "Bucket", apis: ["getUserKeys"], hidden: true },
  },
  {
    path: "/usage",
    name: "usage",
    component: Usage,
    meta: { title: "Usage and cost", apis: ["quotaStatement"] },
  },
  {
    path: "/infra/s3users",
    name: "s3users",
    component: S3Users,
    // the S3 admin API answers root admins only: listCapacity is a root-admin command
    meta: { title: "S3 users", apis: ["getUserKeys", "listCapacity"], operator: true },
  },
];

// The resource pages, as menu entries (same shape as pages' meta).
export const resourceMenu = resources.map((r) => ({
  path: `/r/${r.kind}`,
  meta: { title: r.title, apis: [r.list, ...(r.needs || [])], operator: Boolean(r.operator) },
}));

export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: "/login", name: "login", component: Login, meta: { public: true } },
    { path: "/forbidden", name: "forbidden", component: Forbidden, meta: { public: true } },
    ...pages,
    { path: "/r/:kind", name: "resource", component: ResourcePage, meta: { apis: [] } },
    { path: "/:rest(.*)", redirect: "/" },
  ],
});

router.beforeEach(async (to) => {
  if (!session.ready) await restore();
  if (to.meta.public) return true;
  if (!session.user) return { name: "login", query: { next: to.fullPath } };
  const spec = to.name === "resource" ? resource(to.params.kind) : null;
  if (to.name === "resource" && !spec) return "/";
  const needs = spec ? [spec.list, ...(spec.needs || [])] : to.meta.apis || [];
  if (!can(...needs)) return { name: "forbidden", query: { from: to.fullPath } };
  document.title = `${(spec && spec.title) || to.meta.title || "Cumulo"} · Cumulo`;
  return true;
});
