/**
 * The pages and their paths (HTML5 history: the admin API answers index.html for any path outside
 * /api/ and /assets/, src/admin/web-ui.ts). Every page but login needs a session; without one the
 * router sends the user to login and back to where they were going afterwards.
 */
import { createRouter, createWebHistory } from 'vue-router';
import { resumeSession } from './api.ts';
import ApiKeysPage from './pages/ApiKeysPage.vue';
import BackupsPage from './pages/BackupsPage.vue';
import ClientsPage from './pages/ClientsPage.vue';
import LoginPage from './pages/LoginPage.vue';

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', redirect: '/clients' },
    { path: '/login', name: 'login', component: LoginPage, meta: { title: 'Log in', public: true } },
    { path: '/clients', name: 'clients', component: ClientsPage, meta: { title: 'Clients' } },
    { path: '/settings/backups', name: 'settings-backups', component: BackupsPage, meta: { title: 'Backup and restore' } },
    { path: '/settings/api-keys', name: 'settings-api-keys', component: ApiKeysPage, meta: { title: 'API keys' } },
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
