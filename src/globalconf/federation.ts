/**
 * Which federated instances' configuration is downloaded (the reference's
 * FederationConfigurationSourceFilter, setting `configuration-client.allowed-federations`): a
 * comma-separated list of instance identifiers, `ALL` or `NONE` (the default). Names compare
 * without regard to case, spaces around them do not count, `NONE` anywhere wins over everything,
 * `ALL` over names; our own instance is always allowed.
 */

/** Whether configuration of `instance` may be downloaded, under `setting` (absent or empty: NONE). */
export function federationFilter(setting: string | undefined, ownInstance: string): (instance: string) => boolean {
  const items = (setting ?? '').split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  const own = ownInstance.toLowerCase();
  if (items.length === 0 || items.includes('none')) return (instance) => instance.toLowerCase() === own;
  if (items.includes('all')) return () => true;
  const allowed = new Set(items);
  return (instance) => instance.toLowerCase() === own || allowed.has(instance.toLowerCase());
}
