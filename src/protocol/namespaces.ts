/** The XML namespaces of X-Road SOAP messages (pr-mess). */
export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const XROAD_NS = 'http://x-road.eu/xsd/xroad.xsd';
export const IDENTIFIERS_NS = 'http://x-road.eu/xsd/identifiers';
