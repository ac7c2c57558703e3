/**
 * The pages and their paths (HTML5 history: the admin API answers index.html for any path outside
 * /api/ and /assets/, src/admin/web-ui.ts). Every page but login needs a session; without one the
 * router sends the user to login and back to where they were going afterwards. Until the server is
 * initialised, every page leads to the initialisation wizard.
 */
import { createRouter, createWebHistory } from 'vue-router';
import { resumeSession } from './api.ts';
import { initialisationPending } from './initialisation.ts';
import ApiKeysPage from './pages/ApiKeysPage.vue';
import BackupsPage from './pages/BackupsPage.vue';
import ClientDetailsPage from './pages/ClientDetailsPage.vue';
import ClientFrame from './pages/ClientFrame.vue';
import ClientInternalServersPage from './pages/ClientInternalServersPage.vue';
import ClientServicesPage from './pages/ClientServicesPage.vue';
import ClientsPage from './pages/ClientsPage.vue';
import DiagnosticsPage from './pages/DiagnosticsPage.vue';
import EndpointPage from './pages/EndpointPage.vue';
import InitialisationPage from './pages/InitialisationPage.vue';
import KeysPage from './pages/KeysPage.vue';
import LocalGroupPage from './pages/LocalGroupPage.vue';
import LocalGroupsPage from './pages/LocalGroupsPage.vue';
import LoginPage from './pages/LoginPage.vue';
import ServiceClientPage from './pages/ServiceClientPage.vue';
import ServiceClientsPage from './pages/ServiceClientsPage.vue';
import ServicePage from './pages/ServicePage.vue';
import SystemSettingsPage from './pages/SystemSettingsPage.vue';
import TlsSettingsPage from './pages/TlsSettingsPage.vue';

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', redirect: '/clients' },
    { path: '/login', name: 'login', component: LoginPage, meta: { title: 'Log in', public: true } },
    { path: '/clients', name: 'clients', component: ClientsPage, meta: { title: 'Clients' } },
    {
      path: '/clients/:id',
      component: ClientFrame,
      children: [
        { path: '', name: 'client', component: ClientDetailsPage, meta: { title: 'Client' } },
        { path: 'internal-servers', name: 'client-internal-servers', component: ClientInternalServersPage, meta: { title: 'Client: internal servers' } },
        { path: 'services', name: 'client-services', component: ClientServicesPage, meta: { title: 'Services' } },
        { path: 'services/:serviceId', name: 'client-service', component: ServicePage, meta: { title: 'Service' } },
        { path: 'services/:serviceId/endpoints/:endpointId', name: 'client-endpoint', component: EndpointPage, meta: { title: 'Endpoint' } },
        { path: 'service-clients', name: 'client-service-clients', component: ServiceClientsPage, meta: { title: 'Service clients' } },
        { path: 'service-clients/:scId', name: 'client-service-client', component: ServiceClientPage, meta: { title: 'Service client' } },
        { path: 'local-groups', name: 'client-local-groups', component: LocalGroupsPage, meta: { title: 'Local groups' } },
        { path: 'local-groups/:groupId', name: 'client-local-group', component: LocalGroupPage, meta: { title: 'Local group' } },
      ],
    },
    { path: '/keys', name: 'keys', component: KeysPage, meta: { title: 'Keys and certificates' } },
    { path: '/initialisation', name: 'initialisation', component: InitialisationPage, meta: { title: 'Initial configuration' } },
    { path: '/settings/backups', name: 'settings-backups', component: BackupsPage, meta: { title: 'Backup and restore' } },
    { path: '/settings/api-keys', name: 'settings-api-keys', component: ApiKeysPage, meta: { title: 'API keys' } },
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
  if (!user) return { name: 'login', query: { next: to.fullPath } };
  // A server not initialised yet has one page: the initialisation wizard.
  if (to.name !== 'initialisation' && (await initialisationPending())) return { name: 'initialisation' };
  return true;
});

router.afterEach((to) => {
  document.title = `${String(to.meta.title ?? '')} – Security server administration`;
});
