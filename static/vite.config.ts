import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The build is embedded into the BFF binary and served under its strict
// Content-Security-Policy (script-src 'self'; style-src 'self'): no inline
// script or style may be emitted, so the module-preload polyfill (which
// Vite would otherwise inline in some setups) is off and every asset is a
// file under assets/ with a content hash in its name (cached for a year).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsDir: 'assets',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
  server: {
    // `npm run dev` for working on the app: the BFF (`go run ./cmd/bff dev`)
    // answers /bff and /api; open the app on the BFF's origin after a build,
    // or here for quick UI work (session events need the BFF's origin).
    proxy: { '/bff': 'http://127.0.0.1:8080', '/api': 'http://127.0.0.1:8080' },
  },
});
