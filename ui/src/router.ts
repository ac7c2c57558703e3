/**
 * The pages and their paths (HTML5 history: the admin API answers index.html for any path outside
 * /api/ and /assets/, src/admin/web-ui.ts). Every page but login needs a session; without one the
 * router sends the user to login and back to where they were going afterwards.
 */
import { createRouter, createWebHistory } from 'vue-router';
import { resumeSession } from './api.ts';
import ClientsPage from './pages/ClientsPage.vue';
import DiagnosticsPage from './pages/DiagnosticsPage.vue';
import LoginPage from './pages/LoginPage.vue';
import SystemSettingsPage from './pages/SystemSettingsPage.vue';
import TlsSettingsPage from './pages/TlsSettingsPage.vue';

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', redirect: '/clients' },
    { path: '/login', name: 'login', component: LoginPage, meta: { title: 'Log in', public: true } },
    { path: '/clients', name: 'clients', component: ClientsPage, meta: { title: 'Clients' } },
    { path: '/settings', redirect: '/settings/system' },
    { path: '/settings/system', name: 'settings-system', component: SystemSettingsPage, meta: { title: 'System parameters' } },
    { path: '/settings/tls', name: 'settings-tls', component: TlsSettingsPage, meta: { title: 'Internal TLS certificate' } },
    { path: '/diagnostics', name: 'diagnostics', component: DiagnosticsPage, meta: { title: 'Diagnostics' } },
    { path: '/:unknown(.*)', redirect: '/clients' },
  ],
});

router.beforeEach(async (to) => {
  const user = await resumeSession().catch(() => undefined);
  if (to.meta.public) return to.name === 'login' && user ? { name: 'clients' } : true;
  return user ? true : { name: 'login', query: { next: to.fullPath } };
});

router.afterEach((to) => {
  document.title = `${String(to.meta.title ?? '')} – Security server administration`;
});
