/**
 * Builds the web interface (`npm run build:ui`) into ui/dist, which the admin API serves at `/`
 * (src/admin/web-ui.ts). Settings that the server's Content-Security-Policy depends on: no asset is
 * inlined as a data: URL and no module-preload polyfill is injected, so the page loads nothing but
 * its own files.
 */
import { fileURLToPath } from 'node:url';
import vue from '@vitejs/plugin-vue';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [vue()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    // The browsers an administrator uses today; the admin API's TLS already asks for a modern one.
    target: 'es2022',
  },
  // The Options API and the devtools hooks are not used: leave them out of the bundle.
  define: { __VUE_OPTIONS_API__: 'false', __VUE_PROD_DEVTOOLS__: 'false', __VUE_PROD_HYDRATION_MISMATCH_DETAILS__: 'false' },
});
