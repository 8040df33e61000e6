// Builds the dashboard into the Python package, where the management server serves it
// under /client/ (as CloudStack serves its UI). Nothing is fetched at run time: every
// library is bundled here.
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";
import { fileURLToPath } from "node:url";

export default defineConfig({
  base: "/client/",
  plugins: [vue()],
  build: {
    target: "es2022", // noVNC uses top-level await
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL("index.html", import.meta.url)),
        console: fileURLToPath(new URL("console.html", import.meta.url)),
      },
    },
    outDir: fileURLToPath(new URL("../src/cumulo/dashboard/dist", import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
  },
});
