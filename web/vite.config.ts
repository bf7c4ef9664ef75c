import { svelte } from "@sveltejs/vite-plugin-svelte";
import { defineConfig } from "vite";

// `npm run dev` serves the dashboard on its own port and sends the API to a running stack.
const gateway = process.env.VPS_GATEWAY ?? "http://127.0.0.1:5000";

export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // Hashed names under /assets/: the gateway caches them for a year.
    assetsDir: "assets",
    // No inline scripts or styles anywhere: the gateway's policy forbids them.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      "/api": { target: gateway, ws: true },
      "/socket.io": { target: gateway, ws: true },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
