/**
 * Where configuration is downloaded from, and from which federated instances: the reference's
 * SharedParametersConfigurationLocationsTest (on its V3, V3-many-nodes and V2 shared parameters),
 * ConfigurationDownloadUtilsTest and FederationConfigurationSourceFilterTest.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ConfigurationAnchor } from '../../src/globalconf/anchor.ts';
import { readMetadata } from '../../src/globalconf/directory.ts';
import { federationFilter } from '../../src/globalconf/federation.ts';
import { preferHttps, sharedParametersLocations } from '../../src/globalconf/locations.ts';
import { parseSharedParameters } from '../../src/globalconf/parameters.ts';
import { VECTORS } from '../support/vectors.ts';

const sourcesOf = (name: string) => {
  const file = join(VECTORS, 'configuration-download', name, 'EE', 'shared-params.xml');
  return parseSharedParameters(readFileSync(file, 'utf8'), readMetadata(file), file).sources ?? [];
};
const anchor = (...urls: string[]): ConfigurationAnchor => ({ instanceIdentifier: 'EE', sources: urls.map((downloadUrl) => ({ downloadUrl, verificationCerts: [] })) });
const shape = (locations: { url: string; verificationCerts: readonly Buffer[] }[]) => locations.map((l) => [l.url, l.verificationCerts.length]);

describe('SharedParametersConfigurationLocationsTest', () => {
  it('whenLocationDownloadUrlNotMatchFormatThenNoSharedParametersReturned', () => {
    expect(sharedParametersLocations(anchor('http://notMatchFormat'), sourcesOf('V3'))).toEqual([]);
  });

  it('getInternalconfLocationsFromSharedParameters: https first, one internal certificate each', () => {
    const locations = sharedParametersLocations(anchor('http://domainAddress/internalconf'), sourcesOf('V3'));
    expect(shape(locations)).toEqual([
      ['https://node1/internalconf', 1],
      ['http://node1/internalconf', 1],
    ]);
    expect(locations[0]!.verificationCerts).toEqual(sourcesOf('V3')[0]!.internalVerificationCerts);
  });

  it('getExtarnalconfLocationsFromSharedParameters: the external certificate', () => {
    const locations = sharedParametersLocations(anchor('http://domainAddress/externalconf'), sourcesOf('V3'));
    expect(shape(locations)).toEqual([
      ['https://node1/externalconf', 1],
      ['http://node1/externalconf', 1],
    ]);
    expect(locations[0]!.verificationCerts).toEqual(sourcesOf('V3')[0]!.externalVerificationCerts);
  });

  it('getProxyConfLocationsFromSharedParameters: any other path takes both certificates', () => {
    expect(shape(sharedParametersLocations(anchor('http://domainAddress/PROXY/conf'), sourcesOf('V3')))).toEqual([
      ['https://node1/PROXY/conf', 2],
      ['http://node1/PROXY/conf', 2],
    ]);
  });

  it('getManyInternalconfLocationsFromSharedParameters: three https, then three http', () => {
    const urls = sharedParametersLocations(anchor('http://domainAddress/internalconf'), sourcesOf('V3-many-nodes')).map((l) => l.url);
    expect(urls).toEqual(['https://node1/internalconf', 'https://node2/internalconf', 'https://node3/internalconf', 'http://node1/internalconf', 'http://node2/internalconf', 'http://node3/internalconf']);
  });

  it('whenGetLocationsFromVersion2SharedParametersThenNothingReturned', () => {
    expect(sourcesOf('V2')).toEqual([]);
    expect(sharedParametersLocations(anchor('http://domainAddress/confDir'), sourcesOf('V2'))).toEqual([]);
  });

  it('only a plain http anchor URL gives the path (an https one alone gives none)', () => {
    expect(sharedParametersLocations(anchor('https://domainAddress/internalconf'), sourcesOf('V3'))).toEqual([]);
    expect(sharedParametersLocations(anchor('https://a/x', 'http://b/internalconf'), sourcesOf('V3')).map((l) => l.url)).toEqual(['https://node1/internalconf', 'http://node1/internalconf']);
  });
});

describe('ConfigurationDownloadUtilsTest', () => {
  const ordered = ['http', 'https'].flatMap((scheme) => [1, 2, 3, 4].map((n) => ({ url: `${scheme}://node${n}/internalconf`, verificationCerts: [] })));

  it('shuffleLocationsPreferHttps: the same eight locations, the four https ones first, in another order', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
    const shuffled = preferHttps(ordered, random).map((l) => l.url);
    expect([...shuffled].sort()).toEqual(ordered.map((l) => l.url).sort());
    expect(shuffled.slice(0, 4).every((u) => u.startsWith('https://'))).toBe(true);
    expect(shuffled.slice(4).every((u) => u.startsWith('http://'))).toBe(true);
    expect(shuffled).not.toEqual([...ordered.slice(4), ...ordered.slice(0, 4)].map((l) => l.url));
  });

  it('each http location is also tried as https, before any http one; an https one stays', () => {
    expect(preferHttps([{ url: 'http://a/conf', verificationCerts: [] }, { url: 'https://b/conf', verificationCerts: [] }], () => 0.999).map((l) => l.url)).toEqual(['https://a/conf', 'https://b/conf', 'http://a/conf']);
  });
});

describe('FederationConfigurationSourceFilterTest', () => {
  const OWN = 'aaabbbccc';
  const allowed = (setting: string | undefined, ...instances: string[]) => instances.map(federationFilter(setting, OWN));

  it('shouldNotAllowAnyWhenNotConfigured, shouldNotAllowAnyWhenEmptyFilterList', () => {
    expect(allowed(undefined, 'EE', OWN)).toEqual([false, true]);
    expect(allowed(' ', 'EE', 'fi-prod', OWN)).toEqual([false, false, true]);
  });

  it('shouldNotAllowAnyWhenConfigured (also in mixed case)', () => {
    expect(allowed('NONE', 'JE', 'fi-test', OWN)).toEqual([false, false, true]);
    expect(allowed('nOnE', 'test', 'EE-test', OWN)).toEqual([false, false, true]);
  });

  it('shouldNotAllowAnyWhenConfiguredWithNoneAndAllAndCustomInstances: NONE wins', () => {
    expect(allowed('fi-prod,aLL,EE,nOne,', 'any', 'does not matter', 'EE', 'fi-prod', OWN)).toEqual([false, false, false, false, true]);
  });

  it('shouldAllowAllWhenConfigured (mixed case, with names)', () => {
    expect(allowed('ALL', 'EE', 'fi-prod', OWN)).toEqual([true, true, true]);
    expect(allowed('aLl', 'FI', 'fi-TEST', OWN)).toEqual([true, true, true]);
    expect(allowed('fi-prod,aLL,EE,', 'any', 'does not matter', OWN)).toEqual([true, true, true]);
  });

  it('shouldOnlyAllowCustomInstancesWhenConfiguredWithMixedCase, shouldAllowCustomInstances', () => {
    expect(allowed('fi-prod,EE,', 'FI-PROd', 'ee', 'EE-TEST', 'dev-fi', OWN)).toEqual([true, true, false, false, true]);
    expect(allowed('fi-test,ee,some', 'FI-test', 'EE', 'some', 'dev-fi', OWN)).toEqual([true, true, true, false, true]);
  });

  it('shouldParseFilterWithExtraSpaces', () => {
    expect(allowed('fi-prOD  ,    ee , fi-test, ', 'FI-PROd', 'EE', 'fi-TEST', 'ee-TEST', ' ', '  ', 'dev-fi', OWN)).toEqual([true, true, true, false, false, false, false, true]);
  });

  it('shouldAlwaysAllowOwnInstance', () => {
    expect(['  ', 'dev-fi', OWN, 'fi-dev'].map(federationFilter('NONE', 'fi-dev'))).toEqual([false, false, false, true]);
  });

  it('shouldWorkWithSomeSpecialCharacters', () => {
    expect(allowed('ää-ÖÖÖ,èé-ãâ,', 'ÄÄ-ööö', 'ÈÉ-ÃÂ', 'dev-fi', OWN)).toEqual([true, true, false, true]);
  });
});
