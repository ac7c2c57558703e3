/**
 * The REST metaservices a provider's security server answers itself (pr-mrest; the reference's
 * RestMetadataServiceHandlerImpl), for GET requests to a provider hosted here
 * (`/r1/<provider>/listMethods` etc.):
 *  - listMethods: the provider's services from REST and OpenAPI 3 descriptions, as JSON;
 *  - allowedMethods: of those, the ones the calling client may use, with the endpoints it may use;
 *  - getOpenAPI?serviceCode=…: the OpenAPI 3 description of that service, origins taken out.
 * Endpoints: our configuration grants access per service, as the reference's base endpoint
 * (`* **`) does; the reference lists only the other, administrator-made endpoints, so every
 * `endpoint_list` here is empty until endpoints are configured (issue 14 item 3).
 */
import { XrdError } from '../platform/errors.ts';
import type { ClientId } from '../protocol/identifiers.ts';
import { allowedServicesByDescriptionType, findService, servicesByDescriptionType, type ResolvedService } from '../serverconf/server-conf.ts';
import { anonymiseOpenapi, openapiFiletype } from './openapi.ts';
import { ALLOWED_METHODS, LIST_METHODS, type MetaserviceContext } from './soap-metaservices.ts';

export const GET_OPENAPI = 'getOpenAPI';
const REST_METASERVICES: readonly string[] = [LIST_METHODS, ALLOWED_METHODS, GET_OPENAPI];

/** Whether the server proxy answers this REST request itself (RestMetadataServiceHandlerImpl.canHandle: GET only). */
export const isRestMetaservice = (method: string, serviceCode: string): boolean => method === 'GET' && REST_METASERVICES.includes(serviceCode);

export interface RestMetaserviceAnswer {
  /** Always 200 "OK": failures are thrown and become the reference's REST error. */
  readonly headers: [string, string][];
  readonly body: Buffer;
}

const JSON_TYPE = 'application/json';
/** What getOpenAPI answers with when the description's server named no Content-Type. */
const DEFAULT_GETOPENAPI_CONTENT_TYPE = 'text/plain';

/**
 * @param servicePath what follows the service code: `?serviceCode=…` for getOpenAPI
 * @throws InvalidRequest (getOpenAPI without serviceCode), InternalError (unknown or not OpenAPI 3
 *   service, description not fetched or not anonymised)
 */
export async function answerRestMetaservice(provider: ClientId, serviceCode: string, servicePath: string, caller: ClientId, ctx: MetaserviceContext): Promise<RestMetaserviceAnswer> {
  switch (serviceCode) {
    case LIST_METHODS:
      return json(servicesByDescriptionType(ctx.conf, provider, ['OPENAPI3', 'REST']), provider);
    case ALLOWED_METHODS:
      return json(allowedServicesByDescriptionType(ctx.conf, provider, caller, ['OPENAPI3', 'REST'], ctx.isMember), provider);
    case GET_OPENAPI:
      return getOpenapi(provider, servicePath, ctx);
    default:
      throw new XrdError('InternalError', { reason: `${serviceCode} is not a REST metaservice` });
  }
}

/** RestServiceDetailsListType as the reference's ObjectMapper writes it: snake_case, nulls left out. */
function json(services: readonly ResolvedService[], provider: ClientId): RestMetaserviceAnswer {
  const list = {
    service: services.map((s) => ({
      xroad_instance: provider.instance,
      member_class: provider.memberClass,
      member_code: provider.memberCode,
      ...(provider.subsystem !== undefined ? { subsystem_code: provider.subsystem } : {}),
      service_code: s.code,
      ...(s.version !== undefined ? { service_version: s.version } : {}),
      endpoint_list: [],
      object_type: 'SERVICE',
      service_type: s.description.type === 'OPENAPI3' ? 'OPENAPI' : 'REST',
    })),
  };
  return { headers: [['content-type', JSON_TYPE]], body: Buffer.from(JSON.stringify(list), 'utf8') };
}

async function getOpenapi(provider: ClientId, servicePath: string, ctx: MetaserviceContext): Promise<RestMetaserviceAnswer> {
  const query = servicePath.includes('?') ? servicePath.slice(servicePath.indexOf('?') + 1) : '';
  let code: string | undefined;
  // The last serviceCode wins, its name compared ignoring case (URLEncodedUtils.parse then equalsIgnoreCase).
  for (const [name, value] of new URLSearchParams(query)) if (name.toLowerCase() === 'servicecode') code = value;
  if (code === undefined || code === '') throw new XrdError('InvalidRequest', { reason: 'Missing serviceCode in message body' });
  const target = `SERVICE:${[provider.instance, provider.memberClass, provider.memberCode, provider.subsystem, code].filter((x) => x !== undefined).join('/')}`;
  // ServiceId.Conf.create(provider, code): no version.
  const service = findService(ctx.conf, provider, code);
  if (!service) throw new XrdError('InternalError', { reason: `Service not found: ${target}` });
  const description = service.description;
  if (description.type !== 'OPENAPI3') throw new XrdError('InternalError', { reason: `Invalid service type: ${description.type}` });
  // An OPENAPI3 description always has its URL (server-conf.ts).
  const url = description.url!;
  const fetched = await ctx.fetchDescription(url, service);
  if (fetched.status !== 200) throw new XrdError('InternalError', { reason: `Failed reading service description from ${url}. Status: ${fetched.status} Reason: ${fetched.reason}` });
  const body = anonymiseOpenapi(fetched.body, openapiFiletype(fetched.contentType !== undefined ? [fetched.contentType] : [], url), url);
  return { headers: [['content-type', fetched.contentType ?? DEFAULT_GETOPENAPI_CONTENT_TYPE]], body };
}

