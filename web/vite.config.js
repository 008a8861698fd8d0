// The built page goes into the Python package (serve/static/app/, committed), which the query
// app serves at / (assets under /assets/): `make demo` and the tests need no Node.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  build: {
    outDir: "../serve/static/app",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
});
