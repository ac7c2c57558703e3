/**
 * The test services' own service descriptions, so that the local instance's provider has what an
 * administrator adds in the reference (a WSDL for the SOAP services, an OpenAPI 3 document for
 * rest-test) and the metaservices getWsdl and getOpenAPI have something to hand out:
 *
 *   GET /wsdl                    the WSDL of getRandom and helloService (document/literal, X-Road headers)
 *   GET /rest-test/openapi.json  the OpenAPI 3 document of rest-test (/random, /hello)
 *
 * Both name this server's own address, which the provider's security server takes out before a
 * client sees them.
 */
import { PRODUCER_NS } from './soap-service.ts';

export function testServicesWsdl(url: string): string {
  const operation = (name: string) =>
    `    <wsdl:operation name="${name}">\n` +
    `      <soap:operation soapAction="" style="document"/>\n` +
    `      <xrd:version>v1</xrd:version>\n` +
    `      <wsdl:input><soap:body use="literal"/>${XROAD_HEADERS}</wsdl:input>\n` +
    `      <wsdl:output><soap:body use="literal"/>${XROAD_HEADERS}</wsdl:output>\n` +
    `    </wsdl:operation>\n`;
  const messages = ['getRandom', 'getRandomResponse', 'helloService', 'helloServiceResponse']
    .map((m) => `  <wsdl:message name="${m}"><wsdl:part name="body" element="tns:${m}"/></wsdl:message>\n`)
    .join('');
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<wsdl:definitions name="testService" targetNamespace="${PRODUCER_NS}" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" ` +
    `xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" ` +
    `xmlns:xrd="http://x-road.eu/xsd/xroad.xsd" xmlns:tns="${PRODUCER_NS}">\n` +
    `  <wsdl:types>\n` +
    `    <xsd:schema elementFormDefault="qualified" targetNamespace="${PRODUCER_NS}">\n` +
    `      <xsd:import namespace="http://x-road.eu/xsd/xroad.xsd" schemaLocation="http://x-road.eu/xsd/xroad.xsd"/>\n` +
    `      <xsd:element name="getRandom"><xsd:complexType/></xsd:element>\n` +
    `      <xsd:element name="getRandomResponse"><xsd:complexType><xsd:sequence>` +
    `<xsd:element name="request"><xsd:complexType/></xsd:element>` +
    `<xsd:element name="response"><xsd:complexType><xsd:sequence><xsd:element name="data" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>` +
    `</xsd:sequence></xsd:complexType></xsd:element>\n` +
    `      <xsd:element name="helloService"><xsd:complexType><xsd:sequence><xsd:element name="name" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>\n` +
    `      <xsd:element name="helloServiceResponse"><xsd:complexType><xsd:sequence>` +
    `<xsd:element name="request"><xsd:complexType><xsd:sequence><xsd:element name="name" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>` +
    `<xsd:element name="response"><xsd:complexType><xsd:sequence><xsd:element name="message" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>` +
    `</xsd:sequence></xsd:complexType></xsd:element>\n` +
    `    </xsd:schema>\n` +
    `  </wsdl:types>\n` +
    `  <wsdl:message name="requestheader">${['client', 'service', 'id', 'userId', 'issue', 'protocolVersion'].map((h) => `<wsdl:part name="${h}" element="xrd:${h}"/>`).join('')}</wsdl:message>\n` +
    messages +
    `  <wsdl:portType name="testServicePortType">\n` +
    ['getRandom', 'helloService'].map((o) => `    <wsdl:operation name="${o}"><wsdl:input message="tns:${o}"/><wsdl:output message="tns:${o}Response"/></wsdl:operation>\n`).join('') +
    `  </wsdl:portType>\n` +
    `  <wsdl:binding name="testServiceBinding" type="tns:testServicePortType">\n` +
    `    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>\n` +
    operation('getRandom') +
    operation('helloService') +
    `  </wsdl:binding>\n` +
    `  <wsdl:service name="testService">\n` +
    `    <wsdl:port name="testServicePort" binding="tns:testServiceBinding"><soap:address location="${url}/"/></wsdl:port>\n` +
    `  </wsdl:service>\n` +
    `</wsdl:definitions>\n`
  );
}

const XROAD_HEADERS = ['client', 'service', 'id', 'userId', 'issue', 'protocolVersion'].map((h) => `<soap:header message="tns:requestheader" part="${h}" use="literal"/>`).join('');

export function restTestOpenapi(url: string): object {
  const json = (properties: Record<string, object>) => ({ 'application/json': { schema: { type: 'object', properties } } });
  return {
    openapi: '3.0.0',
    info: { title: 'rest-test', version: '1.0.0', description: 'The local instance\'s REST test service' },
    servers: [{ url: `${url}/rest-test` }],
    paths: {
      '/random': { get: { operationId: 'random', summary: 'A random number in 0..100', responses: { '200': { description: 'The number', content: json({ randomNumber: { type: 'integer' } }) } } } },
      '/hello': {
        get: {
          operationId: 'hello',
          summary: 'A greeting',
          parameters: [{ name: 'name', in: 'query', required: false, schema: { type: 'string', maxLength: 256 } }],
          responses: { '200': { description: 'The greeting', content: json({ greeting: { type: 'string' } }) }, '400': { description: 'The name is too long', content: json({ type: { type: 'string' }, message: { type: 'string' } }) } },
        },
      },
    },
  };
}
