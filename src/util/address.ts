// Network addresses as the mesh handles them: `host:port` strings (IPv6 in brackets), seeds
// pinned with `#nodeId`, and the one canonical form of a remote IP that limits and bans count.
import { isIP } from 'node:net';
import { isNodeId, type NodeId } from '../identity/node-id.ts';

/** A parsed `host:port`. `host` has no brackets. */
export interface HostPort {
  host: string;
  port: number;
}

/** A parsed seed: where to dial, and the node id it must prove, if pinned. */
export interface Seed extends HostPort {
  id: NodeId | undefined;
}

/** Longest `host:port` string accepted (a DNS name is at most 253 characters). */
export const MAX_ADDRESS_LENGTH = 300;

/** Longest host name (RFC 1035: 253 characters written without the trailing dot). */
const MAX_HOST_NAME_LENGTH = 253;
/** A host name: dot-separated labels of 1..63 ASCII letters, digits, `-` and `_` (an IPv4
 *  address is one too). Anything else (control characters, spaces, `/#@?`, brackets, non-ASCII:
 *  write IDN hosts in punycode) is refused, so a member's advertised address cannot smuggle a
 *  terminal escape or a URL into logs and `signet members`. */
const HOST_NAME = /^[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*$/;
/** A port in decimal without leading zeros: each port has one spelling, so one address is one
 *  `host:port` string (the key of its backoff and of seed matching). */
const PORT = /^(?:0|[1-9]\d{0,4})$/;

/**
 * Parses `host:port` (`[::1]:7420` for IPv6). `allowZero` accepts port 0 (listen: the system
 * picks one); a dial target needs 1..65535. The host is a name or IPv4 address (see HOST_NAME)
 * or, in brackets, an IPv6 address; the port is written without leading zeros.
 * @throws TypeError unless `text` is a string; RangeError, naming `name`, for anything else wrong.
 */
export function parseHostPort(text: unknown, name: string, allowZero = false): HostPort {
  if (typeof text !== 'string') throw new TypeError(`"${name}" expected a "host:port" string, got ${typeof text}`);
  if (text.length === 0 || text.length > MAX_ADDRESS_LENGTH) throw new RangeError(`"${name}" expected a "host:port" string of 1..${MAX_ADDRESS_LENGTH} characters`);
  const colon = text.lastIndexOf(':');
  if (colon <= 0) throw new RangeError(`"${name}" expected "host:port", got ${JSON.stringify(text)}`);
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw new RangeError(`"${name}" has a bracketed host that is not an IPv6 address: ${JSON.stringify(text)}`);
  } else if (host.includes(':')) {
    throw new RangeError(`"${name}" must write an IPv6 host in brackets ("[::1]:7420"), got ${JSON.stringify(text)}`);
  } else if (host.length > MAX_HOST_NAME_LENGTH || !HOST_NAME.test(host)) {
    throw new RangeError(`"${name}" has an invalid host: ${JSON.stringify(text)}`);
  }
  if (!PORT.test(portText)) throw new RangeError(`"${name}" has an invalid port: ${JSON.stringify(text)}`);
  const port = Number(portText);
  if (port > 65535 || (port === 0 && !allowZero)) throw new RangeError(`"${name}" has a port out of range: ${JSON.stringify(text)}`);
  return { host, port };
}

/**
 * Parses a seed: `host:port` or `host:port#nodeId` (the seed must then prove that id).
 * @throws TypeError / RangeError naming `name`.
 */
export function parseSeed(text: unknown, name: string): Seed {
  if (typeof text !== 'string') throw new TypeError(`"${name}" expected a "host:port[#nodeId]" string, got ${typeof text}`);
  const hash = text.indexOf('#');
  const id = hash < 0 ? undefined : text.slice(hash + 1);
  if (id !== undefined && !isNodeId(id)) throw new RangeError(`"${name}" pins something that is not a node id: ${JSON.stringify(text.slice(0, 120))}`);
  return { ...parseHostPort(hash < 0 ? text : text.slice(0, hash), name), id };
}

/** `host:port`, with an IPv6 host in brackets. */
export function formatHostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/** `::ffff:` after zero groups: the prefix of an IPv4-mapped IPv6 address (RFC 4291 2.5.5.2). */
const MAPPED_PREFIX = '^(?:0{0,4}:){0,5}:?ffff:';
const MAPPED_DOTTED = new RegExp(`${MAPPED_PREFIX}(\\d{1,3}(?:\\.\\d{1,3}){3})$`);
const MAPPED_HEX = new RegExp(`${MAPPED_PREFIX}([0-9a-f]{1,4}):([0-9a-f]{1,4})$`);

/**
 * The form of a remote IP that per-address limits and bans count: an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, what a dual-stack server reports for IPv4 clients, or its hexadecimal
 * spelling `::ffff:c000:201`) becomes the IPv4 address, so one host cannot pass as two; IPv6
 * is lower-cased.
 */
export function canonicalIp(address: string): string {
  const lower = address.toLowerCase();
  if (isIP(lower) !== 6) return lower;
  const dotted = MAPPED_DOTTED.exec(lower);
  if (dotted && isIP(dotted[1]!) === 4) return dotted[1]!;
  const hex = MAPPED_HEX.exec(lower);
  if (hex) {
    const high = parseInt(hex[1]!, 16);
    const low = parseInt(hex[2]!, 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  return lower;
}

/** True for a wildcard bind address (every interface: `0.0.0.0`, or `::` however spelt), which
 *  is not something a peer can dial. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || (isIP(host) === 6 && /^[0:]+$/.test(host));
}
