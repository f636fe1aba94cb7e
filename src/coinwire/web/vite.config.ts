// Vite build of the dashboard into dist/ (served by `coinwire serve` at / and /app/...).
// `npm run dev` serves the sources with hot reload and sends API calls to a local `coinwire serve`.
import { defineConfig } from "vite";

const api = process.env.COINWIRE_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  base: "/",
  build: { outDir: "dist", assetsDir: "assets", target: "es2022", sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: Object.fromEntries([
      ...["/api", "/xwrap", "/runs", "/runnables", "/healthz", "/readyz"].map((p) => [p, api]),
      ["/rpc", { target: api.replace(/^http/, "ws"), ws: true }],
    ]),
  },
});
